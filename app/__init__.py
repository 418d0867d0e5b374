"""Herd: a private, local chat for Meta's Llama 4 herd."""

__version__ = "0.1.0"  # the same as pyproject.toml's (a test keeps them equal)
