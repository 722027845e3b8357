"""edge-assistant: an offline, on-device assistant on small quantized LLMs and speech models."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
"""numpy's OpenBLAS keeps its worker threads spinning for about 0.1 s after each product, and on a two-core machine
that takes a core from the model that runs next: Whisper's encoder took 130 ms instead of 70 right after
faster-whisper's mel filterbank product. The products numpy does here are small; one thread is enough. Set before
numpy is first imported (a value the user set is kept)."""

__version__ = "0.1.0"
