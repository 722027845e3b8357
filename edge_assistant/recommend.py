"""Pick the model and quantization that fit this machine, and the threads to use."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, LlmModel, Quant
from .hardware import GIB, Machine

HEADROOM = int(1.0 * GIB)
"""Memory left for the OS, speech recognition and the voice."""
OVERHEAD = int(0.3 * GIB)
"""llama.cpp compute buffers and runtime."""
KV_PER_BPARAM = int(0.15 * GIB)
"""Rough KV cache per billion parameters at a 4k context."""
MIN_TOKENS_PER_S = 8.0
"""Slowest generation we call interactive."""
BYTES_PER_BPARAM = {"Q4_0": 0.58e9, "Q4_K_M": 0.62e9, "Q8_0": 1.07e9}


@dataclass(frozen=True)
class Recommendation:
    """The model to run here and why."""

    model: LlmModel
    quant: Quant
    file_bytes: int
    need_bytes: int
    """Estimated memory to run it: weights, KV cache, buffers."""
    est_tokens_per_s: float
    threads: int
    reason: str


def model_bytes(model: LlmModel, quant: Quant) -> int:
    """File size from the catalog, or an estimate from the parameter count."""
    return quant.bytes or int(model.params_b * BYTES_PER_BPARAM.get(quant.name, 0.65e9))


def memory_need(model: LlmModel, quant: Quant) -> int:
    return model_bytes(model, quant) + int(model.params_b * KV_PER_BPARAM) + OVERHEAD


def est_bandwidth(machine: Machine) -> float:
    """A conservative guess of memory read bandwidth (bytes/s) when none was measured."""
    per_core = 4e9 if machine.is_arm else 10e9
    return per_core * min(machine.physical_cores, 8)


def threads_for(machine: Machine) -> int:
    return max(1, machine.physical_cores)


def preferred_quant(model: LlmModel, machine: Machine) -> Quant | None:
    """ARM prefers Q4_0 (runtime repacking), others Q4_K_M; then the default."""
    order = ["Q4_0", "Q4_K_M"] if machine.is_arm else ["Q4_K_M", "Q4_0"]
    order.append(model.default_quant)
    for name in order:
        if name in model.quants:
            return model.quants[name]
    return None


def recommend(catalog: Catalog, machine: Machine, bandwidth: float | None = None) -> Recommendation:
    """The best instruct model that fits in memory with headroom and runs at an interactive speed."""
    bandwidth = bandwidth or est_bandwidth(machine)
    budget = min(machine.available_ram, machine.total_ram - HEADROOM)
    candidates = []
    for model in catalog.llms.values():
        quant = preferred_quant(model, machine)
        if not model.instruct or quant is None:
            continue
        need = memory_need(model, quant)
        speed = bandwidth / model_bytes(model, quant)
        if need <= budget and speed >= MIN_TOKENS_PER_S:
            candidates.append(((model.rank, model.params_b), model, quant, need, speed))
    if not candidates:
        smallest = min(
            (m for m in catalog.llms.values() if m.instruct and preferred_quant(m, machine)), key=lambda m: m.params_b
        )
        quant = preferred_quant(smallest, machine)
        assert quant is not None
        need = memory_need(smallest, quant)
        return Recommendation(
            smallest,
            quant,
            model_bytes(smallest, quant),
            need,
            bandwidth / model_bytes(smallest, quant),
            threads_for(machine),
            f"little memory ({budget / GIB:.1f} GiB usable): only the smallest model has a chance",
        )
    _, model, quant, need, speed = max(candidates, key=lambda c: c[0])
    arm = "; Q4_0 for ARM's runtime repacking" if machine.is_arm and quant.name == "Q4_0" else ""
    reason = (
        f"{model.name} {quant.name} needs ~{need / GIB:.1f} GiB of {budget / GIB:.1f} GiB usable and should "
        f"generate ~{speed:.0f} tok/s on {machine.physical_cores} cores ({machine.feature_line()}){arm}"
    )
    return Recommendation(model, quant, model_bytes(model, quant), need, speed, threads_for(machine), reason)
