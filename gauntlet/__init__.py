"""GAUNTLET: an explainable detector of AI-generated images (library; never imports gradio)."""
__version__ = "0.1.0"
