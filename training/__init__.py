"""Training, export and evaluation of the FERS models (PyTorch lives here, never in the plugin)."""
