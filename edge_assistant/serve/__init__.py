"""Long-running faces over the same parts as the command line: a Wyoming server (Home Assistant's speech
services and conversation agent) and an OpenAI-compatible HTTP API, in one process sharing the loaded models."""
