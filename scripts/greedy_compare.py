"""How a run of scripts/greedy_probe compares with the x86 run (make check-arm, scripts/check_arm.py).

The probe prints, at every step, its best tokens with their logits; a second build is fed the first build's tokens,
so that both see the same context at every step. Where they choose different tokens, it is a numeric tie when the
first build's logit for the other token is within epsilon of its logit for its own choice. The load log says which
weights ggml repacked and which CPU features the build has.
Only the standard library is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple


class Step(NamedTuple):
    """One decoding step: the best tokens with their logits, best first."""

    top: tuple[tuple[int, float], ...]
    """(token id, logit) of the probe's TOP_K best tokens"""
    piece: bytes
    """the text of the best token"""

    @property
    def token(self) -> int:
        return self.top[0][0]

    @property
    def logit(self) -> float:
        return self.top[0][1]

    def logit_of(self, token: int) -> float | None:
        """This step's logit for a token, when it is among the best ones."""
        return next((logit for t, logit in self.top if t == token), None)


class Mismatch(NamedTuple):
    """A step where the ARM build chose another token than x86 did, on the same context."""

    step: int
    x86_token: int
    arm_token: int
    gap: float | None
    """how far below its own choice x86 put the ARM token's logit (None: not among x86's best tokens)"""
    tie: bool


class Agreement(NamedTuple):
    """How an ARM run that was fed the x86 tokens compares with the x86 run."""

    steps: int
    greedy_matched: int
    """steps before the first mismatch: the tokens an ARM greedy run of its own shares with the x86 run"""
    same: int
    """steps at which the ARM build chose the x86 token"""
    mismatches: tuple[Mismatch, ...]
    ok: bool
    detail: str


def parse_steps(stdout: str) -> list[Step]:
    """The probe's stdout: one line per step: step, piece as hex, then token id and logit of the best tokens."""
    steps = []
    for number, line in enumerate(stdout.splitlines()):
        fields = line.split("\t")
        if len(fields) < 4 or len(fields) % 2 or fields[0] != str(number):
            raise ValueError(f"unexpected probe output line {number}: {line[:80]!r}")
        top = tuple((int(t), float(v)) for t, v in zip(fields[2::2], fields[3::2], strict=True))
        steps.append(Step(top, bytes.fromhex(fields[1])))
    return steps


def compare(reference: Sequence[Step], arm: Sequence[Step], epsilon: float) -> Agreement:
    """Compare an ARM run fed the x86 tokens with the x86 run, step by step.

    Where the ARM build chose another token, the difference is a numeric tie when x86's logit for the ARM token is
    within epsilon of x86's logit for its own (when the ARM token is x86's runner-up: x86's top-2 logits are within
    epsilon). Before the first mismatch both builds share their context, so those steps are exactly the tokens an
    ARM greedy run of its own would share with x86. The comparison passes when every mismatch is a tie.
    """
    mismatches = []
    for k, (ref, got) in enumerate(zip(reference, arm, strict=False)):
        if ref.token != got.token:
            x86_logit = ref.logit_of(got.token)
            gap = None if x86_logit is None else ref.logit - x86_logit
            mismatches.append(Mismatch(k, ref.token, got.token, gap, gap is not None and gap <= epsilon))
    n = min(len(reference), len(arm))
    greedy = mismatches[0].step if mismatches else n
    same = n - len(mismatches)
    ok = all(m.tie for m in mismatches) and len(reference) == len(arm)
    if len(reference) != len(arm):
        detail = f"x86 made {len(reference)} steps and ARM {len(arm)}"
    elif not mismatches:
        detail = f"the same token at all {n} steps"
    else:
        first = mismatches[0]
        bad = [m for m in mismatches if not m.tie]
        detail = (
            f"greedy agreement for {greedy} tokens, then {describe(first, epsilon)}; x86 tokens fed back: {same}/{n}"
        )
        detail += (
            f" the same, {len(bad)} mismatch(es) not a tie" if bad else f" the same, every other a tie (ε {epsilon:g})"
        )
        if bad and bad[0] is not first:
            detail += f", first at {describe(bad[0], epsilon)}"
    return Agreement(n, greedy, same, tuple(mismatches), ok, detail)


def describe(m: Mismatch, epsilon: float) -> str:
    below = "not among x86's best" if m.gap is None else f"{m.gap:.3g} below it on x86"
    verdict = "a numeric tie" if m.tie else f"not a tie (ε {epsilon:g})"
    return f"step {m.step}: chose {m.arm_token}, not x86's {m.x86_token} ({below}): {verdict}"


def logit_drift(reference: Sequence[Step], arm: Sequence[Step]) -> float:
    """Largest difference between the two builds' logits for the same token at the same step (same context)."""
    drifts = [
        abs(x86_logit - arm_logit)
        for ref, got in zip(reference, arm, strict=False)
        for token, x86_logit in ref.top
        if (arm_logit := got.logit_of(token)) is not None
    ]
    return max(drifts, default=0.0)


def repacked(log_text: str) -> dict[str, str]:
    """Tensors that ggml repacked at load, and the layout: {'token_embd.weight': 'q8_0_4x4', ...}."""
    return dict(re.findall(r"repack tensor (\S+) with (\w+)", log_text))


def weight_types(log_text: str) -> dict[str, int]:
    """Tensor types in the model, from the loader's log: {'q4_1': 210, 'q8_0': 1, 'f32': 61}."""
    return {kind: int(n) for kind, n in re.findall(r"- type\s+(\w+):\s+(\d+) tensors", log_text)}


def system_features(log_text: str) -> set[str]:
    """Features that llama_print_system_info reports as on, e.g. {'NEON', 'DOTPROD', 'FP16_VA'}."""
    line = next((ln for ln in log_text.splitlines() if ln.startswith("system_info: ")), "")
    return set(re.findall(r"(\w+) = 1\b", line))


def expected_repacks(types: dict[str, int], extensions: Sequence[str]) -> set[str]:
    """Weight types that ggml repacks for an ARM build with these -march extensions (repack.cpp: NEON + dotprod or
    i8mm, for Q4_0 and Q8_0)."""
    if not {"dotprod", "i8mm"} & set(extensions):
        return set()
    return {kind for kind in ("q4_0", "q8_0") if types.get(kind)}


# Which llama_print_system_info feature each -march extension turns on.
SYSTEM_FEATURE = {"dotprod": "DOTPROD", "fp16": "FP16_VA", "i8mm": "MATMUL_INT8", "sve": "SVE"}


def feature_mismatch(reported: set[str], extensions: Sequence[str]) -> list[str]:
    """Features whose presence in the build disagrees with the plan's extensions."""
    return [
        f"{name}={'on' if name in reported else 'off'} but {ext} {'in' if ext in extensions else 'not in'} the plan"
        for ext, name in SYSTEM_FEATURE.items()
        if (name in reported) != (ext in extensions)
    ]
