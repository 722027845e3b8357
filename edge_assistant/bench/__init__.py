"""Benchmarks: native llama.cpp reference figures (llama-bench) and machine memory bandwidth."""
