"""Gradio tab builders. Each takes plain callables from the library and only wires components."""
