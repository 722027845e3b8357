"""The performance model behind `models recommend`: generation speed and memory of every catalog model and
quantization on a target (this machine, or a board from boards.toml).

Speed: token generation reads every weight once per token, so tokens/s = effective bandwidth / weight bytes
read per token. Bytes per token come from the tensor tables of synthetic twins measured here (or a file size
scaled like the model's measured twin, or the parameter count). The effective bandwidth of this machine is
its measured read bandwidth times the share of the bound its generation reached on the twins; a board's is
the public figure in boards.toml. Memory: the assistant's measured peak with the speech models, else the file,
the KV cache at the context cap, llama.cpp's buffers and the measured speech models.
"""

from __future__ import annotations

from dataclasses import dataclass

from .boards import Board
from .catalog import Catalog, LlmModel, Quant
from .hardware import GIB, Machine
from .measured import Measured
from .settings import LlmSettings

OVERHEAD = int(0.3 * GIB)
"""llama.cpp compute buffers and runtime."""
OS_HEADROOM = int(0.5 * GIB)
"""Memory left to the operating system and other programs on this machine."""
KV_PER_BPARAM = int(0.15 * GIB)
"""Rough KV cache per billion parameters at a 4k context, for models without a shape."""
BYTES_PER_BPARAM = {"Q4_0": 0.58e9, "Q4_1": 0.64e9, "Q4_K_M": 0.62e9, "Q8_0": 1.07e9, "F16": 2.0e9}
MIN_TOKENS_PER_S = 5.0
"""Slowest generation we recommend for a voice assistant (faster than speech, about 3 tokens/s)."""
CTX = LlmSettings.ctx_cap
"""The context a prediction assumes: what the assistant runs with by default."""


@dataclass(frozen=True)
class Target:
    """Where the model would run."""

    name: str
    bandwidth: float
    """Bytes/s that token generation reads there."""
    budget: int
    """Memory available to the whole assistant."""
    arm: bool
    threads: int
    inputs: tuple[str, ...]
    """The figures used, each with where it comes from."""


@dataclass(frozen=True)
class Prediction:
    model: LlmModel
    quant: Quant
    bytes_per_token: int
    bytes_source: str
    tok_s: float
    need_bytes: int
    """Memory of the assistant with this model, the speech recognizer and the voice."""
    need_source: str
    fits: bool

    @property
    def ref(self) -> str:
        return f"{self.model.id}:{self.quant.name}"

    @property
    def usable(self) -> bool:
        return self.fits and self.tok_s >= MIN_TOKENS_PER_S


def file_bytes(model: LlmModel, quant: Quant) -> tuple[int, bool]:
    """The file's size from the catalog (True), or an estimate from the parameter count (False)."""
    if quant.bytes:
        return quant.bytes, True
    return int(model.params_b * BYTES_PER_BPARAM.get(quant.name, 0.65e9)), False


def per_token(model: LlmModel, quant: Quant, measured: Measured) -> tuple[int, str]:
    """Weight bytes read per generated token, and how we know."""
    figures = measured.models.get(f"{model.id}:{quant.name}")
    if figures:
        return figures.bytes_per_token, "measured (twin)" if figures.twin else "measured (file)"
    size, known = file_bytes(model, quant)
    sibling = next((m for ref, m in measured.models.items() if ref.split(":")[0] == model.id), None)
    if sibling:
        ratio = sibling.bytes_per_token / sibling.file_bytes
        return int(size * ratio), f"{'file size' if known else 'params'} x {ratio:.2f} (its twin)"
    return size, "file size" if known else "params estimate"


def kv_cache(model: LlmModel, ctx: int = CTX) -> int:
    """F16 K and V for every layer at `ctx` tokens (from the shape), else a per-parameter rule of thumb."""
    s = model.shape
    if s is None:
        return int(model.params_b * KV_PER_BPARAM * ctx / 4096)
    return 2 * s.layers * s.kv_heads * s.head_dim * min(ctx, model.context) * 2


def memory(model: LlmModel, quant: Quant, measured: Measured) -> tuple[int, str]:
    figures = measured.models.get(f"{model.id}:{quant.name}")
    if figures and figures.assistant_rss:
        return figures.assistant_rss, "measured with the speech models"
    size, _ = file_bytes(model, quant)
    return size + kv_cache(model) + OVERHEAD + measured.speech_rss, "file + KV cache + buffers + speech (measured)"


def predict(catalog: Catalog, target: Target, measured: Measured) -> list[Prediction]:
    """Every instruct model and quantization of the catalog on the target."""
    out = []
    for model in catalog.llms.values():
        if not model.instruct:
            continue
        for quant in model.quants.values():
            bpt, how = per_token(model, quant, measured)
            need, need_how = memory(model, quant, measured)
            out.append(
                Prediction(model, quant, bpt, how, target.bandwidth / bpt, need, need_how, need <= target.budget)
            )
    return out


def preferred(model: LlmModel, arm: bool) -> list[str]:
    """Quantizations in the order we would pick them: ARM prefers Q4_0 (runtime repacking), others Q4_K_M."""
    order = ["Q4_0", "Q4_K_M"] if arm else ["Q4_K_M", "Q4_0"]
    return [q for q in [*order, model.default_quant] if q in model.quants]


def pick(predictions: list[Prediction], arm: bool) -> Prediction | None:
    """The best-ranked model that fits and is fast enough, at its preferred quantization; else the fastest
    that fits; else None."""
    by_model: dict[str, Prediction] = {}
    for p in predictions:
        order = preferred(p.model, arm)
        if p.quant.name not in order:
            continue
        current = by_model.get(p.model.id)
        if current is None or order.index(p.quant.name) < order.index(current.quant.name):
            by_model[p.model.id] = p
    usable = [p for p in by_model.values() if p.usable]
    if usable:
        return max(usable, key=lambda p: (p.model.rank, p.model.params_b))
    fitting = [p for p in by_model.values() if p.fits]
    return max(fitting, key=lambda p: p.tok_s) if fitting else None


def this_machine(machine: Machine, measured: Measured, bandwidth: float, threads: int) -> Target:
    effective = bandwidth * measured.tg_share
    budget = max(0, min(machine.available_ram, machine.total_ram - OS_HEADROOM))
    return Target(
        name="this machine",
        bandwidth=effective,
        budget=budget,
        arm=machine.is_arm,
        threads=threads,
        inputs=(
            f"read bandwidth {bandwidth / 1e9:.1f} GB/s on {threads} threads (measured now)",
            f"generation reaches {measured.tg_share:.0%} of the bandwidth bound ("
            + (
                f"median of the twins in {measured.source}, {measured.machine})"
                if any(m.tg_share is not None for m in measured.models.values())
                else "assumed: no speed measured yet; run make bench-seeds)"
            ),
            f"memory: {machine.available_ram / GIB:.1f} GiB available of {machine.total_ram / GIB:.1f} GiB "
            f"(keeping {OS_HEADROOM / GIB:.1f} GiB for the system)",
            f"speech models (whisper-tiny.en + Piper joe): {measured.speech_rss / 2**20:.0f} MiB ({measured.source})",
        ),
    )


def for_board(board: Board, measured: Measured) -> Target:
    return Target(
        name=board.name,
        bandwidth=board.llm_bandwidth,
        budget=board.budget,
        arm=True,
        threads=board.cores,
        inputs=(
            f"{board.cpu}; features {' '.join(board.features)} ({board.features_source})",
            f"generation reads {board.llm_bandwidth / 1e9:.1f} GB/s ({board.llm_bandwidth_source})",
            f"memory {board.memory_bytes / GIB:.0f} GiB, {board.os_reserve_bytes / GIB:.1f} GiB kept for the OS "
            f"(assumed); {board.memory}",
            f"speech models (whisper-tiny.en + Piper joe): {measured.speech_rss / 2**20:.0f} MiB ({measured.source})",
        ),
    )
