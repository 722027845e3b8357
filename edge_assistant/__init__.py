"""edge-assistant: an offline, on-device assistant on small quantized LLMs and speech models."""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
"""numpy's OpenBLAS keeps its idle worker threads spinning for 2^28 cycles (about 0.1 s) after each product, and on a
two-core machine that takes a core from the model that runs next: Whisper's encoder took 125 ms instead of 70 right
after faster-whisper's mel filterbank product. At 2^4 cycles they sleep at once; the threads and so the results
stay the same. Set before numpy is first imported (a value the user set is kept)."""

__version__ = "0.1.0"
