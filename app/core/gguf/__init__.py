"""GGUF files, read from their header only.

The raw reader (``reader``), the tensor and error types (``types``), and the model view
Herd plans and loads from (``info``).
"""
