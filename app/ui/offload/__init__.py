"""Offload & Context: the plan dialog and its memory map."""
