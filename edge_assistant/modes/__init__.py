"""The user jobs: assistant, transcribe, translate; each a small class wired from the parts."""
