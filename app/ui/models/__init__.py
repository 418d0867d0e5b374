"""Models in the window: the model bar and its load life, the Model Manager, downloads."""
