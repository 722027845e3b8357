"""Pick the model and quantization for this machine or a named board, and say why with numbers
(the performance model is in predict.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, LlmModel, Quant
from .hardware import GIB, Machine
from .measured import Measured
from .predict import OVERHEAD, Prediction, Target, file_bytes, kv_cache, pick, predict, preferred

__all__ = ["OVERHEAD", "Recommendation", "memory_need", "preferred_quant", "recommend"]


@dataclass(frozen=True)
class Recommendation:
    """The model to run on a target, why, and the predictions it was chosen from."""

    choice: Prediction
    target: Target
    predictions: list[Prediction]
    reason: str

    @property
    def model(self) -> LlmModel:
        return self.choice.model

    @property
    def quant(self) -> Quant:
        return self.choice.quant

    @property
    def threads(self) -> int:
        return self.target.threads


def model_bytes(model: LlmModel, quant: Quant) -> int:
    """File size from the catalog, or an estimate from the parameter count."""
    return file_bytes(model, quant)[0]


def memory_need(model: LlmModel, quant: Quant) -> int:
    """Memory to run the model alone: weights, KV cache at a 4k context, buffers."""
    return model_bytes(model, quant) + kv_cache(model) + OVERHEAD


def preferred_quant(model: LlmModel, machine: Machine) -> Quant | None:
    """ARM prefers Q4_0 (runtime repacking), others Q4_K_M; then the default."""
    order = preferred(model, machine.is_arm)
    return model.quants[order[0]] if order else None


def recommend(catalog: Catalog, target: Target, measured: Measured) -> Recommendation:
    """The best-ranked instruct model that fits beside the speech models and generates fast enough."""
    predictions = predict(catalog, target, measured)
    choice = pick(predictions, target.arm)
    if choice is None:
        smallest = min(
            (p for p in predictions if p.quant.name in preferred(p.model, target.arm)), key=lambda p: p.need_bytes
        )
        reason = (
            f"little memory ({target.budget / GIB:.1f} GiB for the assistant): even {smallest.ref} needs "
            f"~{smallest.need_bytes / GIB:.1f} GiB with the speech models"
        )
        return Recommendation(smallest, target, predictions, reason)
    arm = "; Q4_0 for ARM's runtime repacking" if target.arm and choice.quant.name == "Q4_0" else ""
    slow = "" if choice.usable else f" (below the {5:g} tok/s we call fast enough for voice: nothing faster fits)"
    reason = (
        f"{choice.model.name} {choice.quant.name}: ~{choice.tok_s:.1f} tok/s ({choice.bytes_per_token / 1e9:.2f} GB "
        f"read per token at {target.bandwidth / 1e9:.1f} GB/s){slow}; ~{choice.need_bytes / GIB:.1f} GiB with the "
        f"speech models, of {target.budget / GIB:.1f} GiB{arm}"
    )
    return Recommendation(choice, target, predictions, reason)
