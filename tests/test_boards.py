"""`models recommend --device`: the board table, the predictions against public measurements, the output."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge_assistant.boards import board, load_boards
from edge_assistant.catalog import load_catalog, parse_spec
from edge_assistant.cli import main
from edge_assistant.errors import UsageError
from edge_assistant.measured import load_measured
from edge_assistant.predict import for_board, predict


def test_every_board_figure_has_a_source() -> None:
    boards = load_boards()
    assert {"pi4-4gb", "pi5-8gb"} <= set(boards)
    for b in boards.values():
        assert b.llm_bandwidth > 0 and b.llm_bandwidth_source and b.features_source and b.memory
        assert 0 < b.os_reserve_bytes < b.memory_bytes and b.cores == 4
        for run in b.calibration:
            assert run.gb_per_token and run.source
            assert run.tok_s * run.gb_per_token * 1e9 == pytest.approx(b.llm_bandwidth, rel=0.1)
    assert "dotprod" in board("pi5-8gb").features and "dotprod" not in board("pi4-4gb").features


def test_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown device 'pi6'.*pi5-8gb"):
        board("pi6")


def test_predictions_are_within_a_third_of_public_measurements() -> None:
    """Each board's checks: public tok/s of catalog models on that board, not used to set its bandwidth."""
    catalog, measured = load_catalog(), load_measured()
    checked = 0
    for b in load_boards().values():
        predictions = {p.ref: p for p in predict(catalog, for_board(b, measured), measured)}
        for run in b.checks:
            name, quant = parse_spec(run.model)
            p = predictions[f"{name}:{quant}"]
            assert p.tok_s == pytest.approx(run.tok_s, rel=1 / 3), f"{b.id} {run.model}: {p.tok_s:.2f} vs {run.tok_s}"
            checked += 1
    assert checked >= 3


def test_recommend_for_a_pi5_prints_method_inputs_and_predictions() -> None:
    result = CliRunner().invoke(main, ["models", "recommend", "--device", "pi5-8gb"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Raspberry Pi 5 8 GB" in out and "method: tok/s = " in out and "inputs:" in out
    assert "geerlingguy" in out or "9.2 GB/s" in out
    assert "llama-3.2-3b-instruct:Q4_0" in out and "GB READ/TOKEN" in out


def test_recommend_device_json() -> None:
    result = CliRunner().invoke(main, ["models", "recommend", "--device", "pi4-4gb", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == "Raspberry Pi 4 Model B 4 GB" and data["inputs"] and data["method"]
    assert data["need_bytes"] <= data["budget_bytes"]
    refs = {f"{p['model']}:{p['quant']}": p for p in data["predictions"]}
    assert refs["phi-3.5-mini-instruct:Q4_K_M"]["tokens_per_s"] < refs["llama-3.2-1b-instruct:Q4_K_M"]["tokens_per_s"]
    assert not refs["phi-3.5-mini-instruct:Q8_0"]["fits"]


def test_recommend_unknown_device_is_one_line() -> None:
    result = CliRunner().invoke(main, ["models", "recommend", "--device", "pi9-1gb"])
    assert result.exit_code == 2 and "unknown device" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
