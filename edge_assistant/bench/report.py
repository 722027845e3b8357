"""The README's table of seed-model twins, from `bench --synthetic seeds --json` output."""

from __future__ import annotations

from typing import Any

from ..boards import board

MIB = 2**20
BOARDS = ("pi5-8gb", "pi4-4gb")


def _ratio(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


def seed_table(data: dict[str, Any]) -> str:
    """Markdown: one row per measured model, the machine above it, what it means for a Pi below it."""
    m = data["machine"]
    bw_key = next(k for k in m if k.startswith("read_bandwidth_") and not k.endswith("_1_thread"))
    bw = m[bw_key]
    lines = [
        f"Measured on {m.get('name', m['arch'])}: {m['cores']} cores ({m['features']}), read bandwidth "
        f"{m['read_bandwidth_1_thread'] / 1e9:.1f} GB/s on 1 thread, {bw / 1e9:.1f} GB/s on {m['cores']}; "
        f"llama.cpp {data['llm'][0].get('native_build') or '?'}; medians of interleaved rounds.",
        "",
        "| twin of | file MiB (real) | MiB read/token | load s | pp64 tok/s (× llama-bench) | pp512 | "
        "tg64 tok/s (× llama-bench) | tg128 | bound tok/s (tg share) | TTFT cold / cached ms | RSS MiB alone / "
        "with speech | " + " | ".join(f"{board(b).name} tok/s" for b in BOARDS) + " |",
        "|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(BOARDS),
    ]
    for r in data["llm"]:
        real = r.get("real_file_bytes")
        f = r["footprint"]
        pis = " | ".join(f"{board(b).llm_bandwidth / r['bytes_per_token']:.1f}" for b in BOARDS)
        lines.append(
            f"| `{r.get('twin_of') or r['model']}` | {r['file_bytes'] / MIB:.0f} ({real / MIB:.0f}) | "
            if real
            else f"| `{r.get('twin_of') or r['model']}` | {r['file_bytes'] / MIB:.0f} | "
        )
        lines[-1] += (
            f"{r['bytes_per_token'] / MIB:.0f} | {r['load_s']:.2f} | {r['pp_tps']:.1f} ({_ratio(r.get('pp_ratio'))}) | "
            f"{r['pp512_tps']:.1f} | {r['tg_tps']:.1f} ({_ratio(r.get('tg_ratio'))}) | {r['tg128_tps']:.1f} | "
            f"{r['bandwidth_bound_tps']:.1f} ({r['tg_vs_bound']:.0%}) | {r['ttft_cold_s'] * 1000:.0f} / "
            f"{r['ttft_cached_s'] * 1000:.0f} | {r['peak_rss_bytes'] / MIB:.0f} / {f['after_llm'] / MIB:.0f} | {pis} |"
        )
    notes = [
        "",
        "Pi columns: the board's generation bandwidth (boards.toml, from public measurements of larger models) "
        "divided by the MiB each token reads; that is the bandwidth ratio to this machine, not a guess: "
        + "; ".join(f"{board(b).name} {board(b).llm_bandwidth / 1e9:.1f} GB/s" for b in BOARDS)
        + f" against {bw / 1e9:.1f} GB/s measured here.",
    ]
    return "\n".join(lines + notes)


def pi_lists(boards: tuple[str, ...] = ("pi4-4gb", "pi5-8gb")) -> str:
    """Markdown: per board, the models worth pulling (predicted speed and memory), best first."""
    from ..catalog import load_catalog
    from ..hardware import GIB
    from ..measured import load_measured
    from ..predict import MIN_TOKENS_PER_S, for_board, predict, preferred
    from ..recommend import recommend

    catalog, measured = load_catalog(), load_measured()
    lines: list[str] = []
    for board_id in boards:
        b = board(board_id)
        target = for_board(b, measured)
        rec = recommend(catalog, target, measured)
        lines += [
            f"**{b.name}** ({b.llm_bandwidth / 1e9:.1f} GB/s for generation, {b.budget / GIB:.1f} GiB for the "
            f"assistant): pull `{rec.model.id}:{rec.quant.name}`.",
            "",
            "| model | predicted tok/s | memory with speech |",
            "|---|---|---|",
        ]
        shown = [
            p
            for p in predict(catalog, target, measured)
            if p.fits and p.quant.name == (preferred(p.model, True) or [""])[0]
        ]
        for p in sorted(shown, key=lambda p: (-p.model.rank, -p.tok_s)):
            slow = "" if p.tok_s >= MIN_TOKENS_PER_S else " (slow)"
            lines.append(f"| `{p.ref}` | {p.tok_s:.1f}{slow} | {p.need_bytes / GIB:.1f} GiB |")
        lines.append("")
    lines.append(
        f"Computed by `edge-assistant models recommend --device ID --all` (slow: under {MIN_TOKENS_PER_S:g} tok/s, "
        "which a spoken answer outruns)."
    )
    return "\n".join(lines)
