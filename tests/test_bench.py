"""`edge-assistant bench` runs and reports its figures (no thresholds: the machines are shared and noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.slow


def test_bench_json_reports_every_figure() -> None:
    result = CliRunner().invoke(
        main, ["bench", "--json", "-r", "1", "-m", "smollm2-135m-instruct", "--no-native", "--only", "llm"]
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


def test_listener_gaps_are_read_from_one_recording(tmp_path: Path) -> None:
    """From each question's last loud sample to the first loud sample of the answer, on the speaker's recording."""
    import numpy as np
    import soundfile

    from edge_assistant.bench.voice import Clip, _gaps

    rate = 16000
    audio = np.zeros(rate * 10, dtype=np.int16)
    audio[rate * 1 : rate * 2] = 5000  # question 1: 1.0-2.0 s
    audio[int(rate * 2.4) : rate * 3] = 4000  # its answer from 2.4 s
    audio[rate * 5 : int(rate * 6.5)] = 5000  # question 2: 5.0-6.5 s
    audio[int(rate * 6.8) : rate * 7] = 4000  # its answer from 6.8 s
    wav = tmp_path / "heard.wav"
    soundfile.write(wav, audio, rate, subtype="PCM_16")
    placed = [(Clip("q1", 0.5, 1.5), 0.8), (Clip("q2", 0.5, 2.0), 4.9)]
    assert [round(g, 2) for g in _gaps(wav, placed)] == [0.4, 0.3]


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
