"""The user jobs: assistant, transcribe, translate; each owns its loop (open, run over a source yielding
events, close), wired from the parts in `parts`."""
