"""Spoken replies: the Speaker protocol, Piper and espeak-ng voices, playback and WAV files."""
