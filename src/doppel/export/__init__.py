"""Leaving doppel: a run folder as a merged HF folder, a GGUF file or an Ollama model."""
