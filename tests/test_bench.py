"""`edge-assistant bench` runs and reports its figures (no thresholds: the machines are shared and noisy)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.slow


def test_bench_json_reports_every_figure() -> None:
    result = CliRunner().invoke(main, ["bench", "--json", "-r", "1", "-m", "smollm2-135m-instruct", "--no-native"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["machine"]["read_bandwidth_1_thread"] > 0
    (row,) = data["llm"]
    for key in (
        "load_s",
        "pp_tps",
        "pp512_tps",
        "tg_tps",
        "tg128_tps",
        "stream_tps",
        "ttft_cold_s",
        "ttft_cached_s",
        "bandwidth_bound_tps",
    ):
        assert row[key] > 0, key
    assert row["peak_rss_bytes"] > row["file_bytes"] * 0.5
    assert 0 < row["cached_tokens"] < row["prompt_tokens"]
