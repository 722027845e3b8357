"""What `models recommend` prints: the pick, the method, its inputs with their sources, the predictions."""

from __future__ import annotations

from typing import Any

from ..bench.bandwidth import measure_read_bandwidth
from ..boards import board
from ..hardware import GIB
from ..measured import load_measured
from ..predict import MIN_TOKENS_PER_S, Prediction, for_board, this_machine
from ..recommend import Recommendation, recommend
from .common import App, table

METHOD = (
    "tok/s = bandwidth that generation reads / weight bytes read per token; memory = the assistant's measured "
    "peak with whisper-tiny.en and Piper (else file + KV cache at 4k + buffers + speech models); a model fits when "
    f"that memory is within the budget, and we recommend the best-ranked that fits at >= {MIN_TOKENS_PER_S:g} tok/s"
)


def _prediction(p: Prediction) -> dict[str, Any]:
    return {
        "model": p.model.id,
        "quant": p.quant.name,
        "bytes_per_token": p.bytes_per_token,
        "bytes_source": p.bytes_source,
        "tokens_per_s": round(p.tok_s, 2),
        "need_bytes": p.need_bytes,
        "need_source": p.need_source,
        "fits": p.fits,
        "usable": p.usable,
    }


def recommend_here_or_on(app: App, device: str | None) -> tuple[Recommendation, dict[str, Any]]:
    measured = load_measured(app.paths.home / "measured.toml")
    m = app.machine
    if device:
        target = for_board(board(device), measured)
    else:
        threads = max(1, m.physical_cores)
        bandwidth = measure_read_bandwidth(threads, size_bytes=256 << 20, repeats=3)
        target = this_machine(m, measured, bandwidth, threads)
    rec = recommend(app.store.catalog, target, measured)
    installed = app.store.find("llm", rec.model.id, rec.quant.name) is not None
    data: dict[str, Any] = {
        "device": device,
        "target": target.name,
        "model": rec.model.id,
        "quant": rec.quant.name,
        "file_bytes": rec.quant.bytes,
        "need_bytes": rec.choice.need_bytes,
        "est_tokens_per_s": round(rec.choice.tok_s, 1),
        "threads": rec.threads,
        "installed": installed,
        "reason": rec.reason,
        "method": METHOD,
        "inputs": list(target.inputs),
        "bandwidth": target.bandwidth,
        "budget_bytes": target.budget,
        "predictions": [_prediction(p) for p in rec.predictions],
        "machine": {
            "arch": m.arch,
            "total_ram": m.total_ram,
            "available_ram": m.available_ram,
            "physical_cores": m.physical_cores,
            "features": sorted(m.features),
        },
    }
    return rec, data


def render_recommendation(rec: Recommendation, data: dict[str, Any], show_all: bool) -> str:
    lines = [f"{rec.model.id}:{rec.quant.name}  threads={rec.threads}  ({rec.target.name})", rec.reason]
    if not data["installed"] and data["device"] is None:
        lines.append(f"get it with: edge-assistant models pull {rec.model.id}:{rec.quant.name}")
    lines += ["", f"method: {METHOD}", "inputs:"]
    lines += [f"  - {line}" for line in rec.target.inputs]
    if show_all:
        rows = [
            [
                p.ref,
                f"{p.bytes_per_token / 1e9:.2f} ({p.bytes_source})",
                f"{p.tok_s:.1f}",
                f"{p.need_bytes / GIB:.1f} GiB",
                "yes" if p.usable else ("too slow" if p.fits else "no"),
            ]
            for p in sorted(rec.predictions, key=lambda p: -p.tok_s)
        ]
        lines += ["", table(rows, ["MODEL:QUANT", "GB READ/TOKEN", "TOK/S", "MEMORY", "FITS"])]
    return "\n".join(lines)
