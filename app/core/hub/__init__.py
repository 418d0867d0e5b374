"""The Hugging Face Hub: the catalog, resumable verified downloads and the local library.

``huggingface_hub`` is imported only below this package (DESIGN.md, rule 2).
"""
