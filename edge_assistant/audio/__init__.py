"""Audio in: sources (microphone, WAV/FLAC files, raw stdin), resampling, endpointing."""
