"""edge-assistant: an offline, on-device assistant on small quantized LLMs and speech models."""

__version__ = "0.1.0"
