"""How make check-arm judges an emulated ARM run against the x86 run (scripts/greedy_compare.py): token agreement
and numeric ties, weight repacking, and the CPU features the build reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "greedy_compare.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("greedy_compare", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def steps(*tops: tuple[tuple[int, float], ...]) -> list[object]:
    """Steps from their best tokens: ((id, logit), ...) best first."""
    check = load()
    return [check.Step(top, b"x") for top in tops]


def test_parses_the_probe_output() -> None:
    check = load()
    parsed = check.parse_steps("0\t205061726973\t7042\t17.7388363\t260\t15.2331791\n1\t2e\t30\t25.5\t28\t24.3\n")
    assert [s.token for s in parsed] == [7042, 30]
    assert parsed[0].piece == b" Paris"
    assert parsed[0].logit_of(260) == 15.2331791
    assert parsed[0].logit_of(30) is None


def test_identical_runs_agree() -> None:
    check = load()
    run = steps(((5, 20.0), (6, 18.0)), ((7, 15.0), (8, 14.9)))
    agreement = check.compare(run, list(run), 0.5)
    assert (agreement.ok, agreement.greedy_matched, agreement.same, agreement.mismatches) == (True, 2, 2, ())


def test_a_mismatch_at_a_numeric_tie_passes() -> None:
    check = load()
    x86 = steps(((5, 20.0), (6, 18.0)), ((7, 15.02), (8, 15.0)), ((9, 12.0), (1, 11.0)))
    arm = steps(((5, 20.1), (6, 18.0)), ((8, 15.01), (7, 15.0)), ((9, 11.9), (1, 11.0)))
    agreement = check.compare(x86, arm, 0.05)
    assert (agreement.ok, agreement.greedy_matched, agreement.same) == (True, 1, 2)
    assert [(m.step, m.tie) for m in agreement.mismatches] == [(1, True)]


def test_a_tie_may_be_with_a_token_below_the_runner_up() -> None:
    check = load()
    x86 = steps(((3575, 14.99), (3807, 14.89), (4723, 14.76)))
    arm = steps(((4723, 14.27), (3575, 14.11), (3807, 14.05)))
    assert check.compare(x86, arm, 0.25).ok is True
    assert check.compare(x86, arm, 0.2).ok is False


def test_a_mismatch_with_a_clear_winner_fails() -> None:
    check = load()
    x86 = steps(((5, 20.0), (6, 18.0)), ((7, 15.5), (8, 15.0)))
    arm = steps(((5, 20.0), (6, 18.0)), ((8, 15.5), (7, 15.4)))
    agreement = check.compare(x86, arm, 0.05)
    assert (agreement.ok, agreement.greedy_matched) == (False, 1)
    assert agreement.mismatches[0].gap == 0.5


def test_a_later_mismatch_that_is_no_tie_fails_too() -> None:
    check = load()
    x86 = steps(((7, 15.01), (8, 15.0)), ((5, 20.0), (6, 18.0)))
    arm = steps(((8, 15.2), (7, 15.0)), ((6, 20.0), (5, 17.0)))
    agreement = check.compare(x86, arm, 0.05)
    assert (agreement.ok, agreement.greedy_matched, agreement.same) == (False, 0, 0)
    assert [m.tie for m in agreement.mismatches] == [True, False]


def test_a_token_outside_the_x86_top_is_no_tie() -> None:
    check = load()
    x86 = steps(((7, 15.01), (8, 15.0)))
    arm = steps(((9, 15.2), (7, 15.0)))
    agreement = check.compare(x86, arm, 100.0)
    assert agreement.ok is False
    assert agreement.mismatches[0].gap is None


def test_a_run_that_stops_early_fails() -> None:
    check = load()
    x86 = steps(((5, 20.0), (6, 18.0)), ((7, 15.0), (8, 14.0)))
    agreement = check.compare(x86, x86[:1], 0.05)
    assert (agreement.ok, agreement.same) == (False, 1)


def test_logit_drift_compares_the_same_tokens() -> None:
    check = load()
    x86 = steps(((5, 20.0), (6, 18.0)), ((7, 15.0), (8, 14.0)))
    arm = steps(((5, 19.5), (6, 18.25)), ((8, 14.9), (7, 14.8)))
    assert check.logit_drift(x86, arm) == pytest.approx(0.9)


LOAD_LOG = """llama_model_loader: - type  f32:   61 tensors
llama_model_loader: - type q4_1:  210 tensors
llama_model_loader: - type q8_0:    1 tensors
ggml_repack_tensor: repack tensor token_embd.weight with q8_0_4x4
system_info: CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 1 | DOTPROD = 1 | OPENMP = 1 | REPACK = 1 |
"""


def test_the_load_log_is_read() -> None:
    check = load()
    assert check.weight_types(LOAD_LOG) == {"f32": 61, "q4_1": 210, "q8_0": 1}
    assert check.repacked(LOAD_LOG) == {"token_embd.weight": "q8_0_4x4"}
    assert check.system_features(LOAD_LOG) == {"NEON", "ARM_FMA", "FP16_VA", "DOTPROD", "OPENMP", "REPACK"}


def test_repacking_is_expected_only_with_dot_products() -> None:
    check = load()
    types = {"f32": 61, "q4_1": 210, "q8_0": 1}
    assert check.expected_repacks(types, ("dotprod", "fp16")) == {"q8_0"}
    assert check.expected_repacks({**types, "q4_0": 200}, ("i8mm",)) == {"q4_0", "q8_0"}
    assert check.expected_repacks(types, ()) == set()
    assert check.feature_mismatch({"NEON", "DOTPROD", "FP16_VA"}, ("dotprod", "fp16")) == []
    assert check.feature_mismatch({"NEON"}, ("dotprod",)) == ["DOTPROD=off but dotprod in the plan"]
