"""Language model runtime: backends (local llama.cpp, remote OpenAI-compatible), chat formats, conversations."""
