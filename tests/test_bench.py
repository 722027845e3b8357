"""`edge-assistant bench` runs and reports its figures (no thresholds: the machines are shared and noisy)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.slow


def test_bench_json_reports_every_figure() -> None:
    sections = ["--only", "llm", "--only", "stt", "--only", "voice"]
    result = CliRunner().invoke(
        main, ["bench", "--json", "-r", "1", "-m", "smollm2-135m-instruct", "--no-native", *sections]
    )
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


@pytest.mark.timeout(1200)
def test_bench_serve_measures_our_wyoming_server() -> None:
    result = CliRunner().invoke(main, ["bench", "--json", "-r", "1", "--only", "serve"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["serve"]
    assert rows[0]["name"].startswith("edge-assistant serve") and rows[0]["processes"] == 1
    for row in rows:  # the peers too, where `make bench` installed them
        assert len(row["transcript_s"]) == 5 and len(row["first_audio_s"]) == 3
        assert 0 < row["transcript_mean_s"] <= row["transcript_p95_s"] and row["first_audio_median_s"] > 0
        assert row["wer"] < 0.2 and row["memory_mib"] > 50
