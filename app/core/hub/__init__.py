"""The Hugging Face Hub: the catalog, resumable verified downloads and the local library.

The library also finds, where they are, the models LM Studio, Ollama and the user's own
folders hold. ``huggingface_hub`` is imported only below this package (DESIGN.md, rule 2).
"""
