"""Speech to text: the recognizer protocol, vosk (streaming) and whisper (faster-whisper)."""
