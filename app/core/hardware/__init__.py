"""This machine and described ones.

GPUs and RAM (``probe``), CPU features (``cpu``), and machines typed on a command line
(``spec``). Probes never raise; what they cannot see is noted.
"""
