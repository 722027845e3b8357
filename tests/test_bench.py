"""`edge-assistant bench` runs and reports its figures (no thresholds: the machines are shared and noisy)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.slow


def test_bench_json_reports_every_figure() -> None:
    args = ["bench", "--json", "-r", "1", "-m", "smollm2-135m-instruct", "--no-native"]
    result = CliRunner().invoke(main, [*args, "--only", "llm", "--only", "stt", "--only", "voice"])
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


@pytest.mark.timeout(900)
def test_bench_notes_compares_with_faster_whisper_and_measures_memory() -> None:
    args = ["bench", "--json", "-r", "1", "--only", "notes", "--notes-minutes", "0.5", "--notes-minutes", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    notes = json.loads(result.stdout)["notes"]
    assert notes["audio_s"] == 30 and len(notes["ours_s"]) == len(notes["direct_s"]) == 1
    assert notes["ours_rtf"] > 0 and notes["direct_rtf"] > 0 and notes["ratio"] > 0
    assert 0 <= notes["ours_wer"] < 0.2 and 0 <= notes["direct_wer"] < 0.2
    assert notes["clips_wer_file"] < 0.2 and notes["clips_wer_live"] < 0.2
    peaks = notes["peak_rss_bytes"]
    assert set(peaks) == {"0.5", "1"} and all(50 * 2**20 < b < 2**31 for b in peaks.values())
