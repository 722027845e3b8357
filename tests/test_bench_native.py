"""Native reference benchmarks: memory read bandwidth, and llama.cpp's own llama-bench when it has been built."""

from __future__ import annotations

import pytest

from edge_assistant.bench.bandwidth import measure_read_bandwidth
from edge_assistant.bench.native import find_llama_bench, run_llama_bench
from tests.helpers import smollm2_path


def test_read_bandwidth_is_plausible() -> None:
    rate = measure_read_bandwidth(1, size_bytes=64 << 20, repeats=2)
    assert rate > 0.5e9, f"{rate / 1e9:.2f} GB/s"


@pytest.mark.slow
def test_llama_bench_on_smollm2() -> None:
    binary = find_llama_bench()
    if binary is None:
        pytest.skip("run make bench-native")
    result = run_llama_bench(binary, smollm2_path(), threads=2, pp=16, tg=8, repetitions=1, timeout=300)
    assert result.pp_tokens_per_s > 0
    assert result.tg_tokens_per_s > 0
    assert (result.pp_tokens, result.tg_tokens, result.threads) == (16, 8, 2)
    assert result.build
