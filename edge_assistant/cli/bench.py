"""`edge-assistant bench`: the figures behind our speed targets, printed (never asserted in tests)."""

from __future__ import annotations

from typing import Any

import click

from ..bench.bandwidth import measure_read_bandwidth
from ..bench.llm import as_dict, measure_in_child
from ..bench.native import find_llama_bench
from ..errors import BackendError
from ..llm.select import choose
from .common import App, emit_json, json_option, pass_app, status


def _llm_section(
    app: App, specs: tuple[str, ...], threads: int, repetitions: int, native: bool, bandwidth: float
) -> list[dict[str, Any]]:
    items = (
        [choose(app.store, app.machine, s) for s in specs]
        if specs
        else [choose(app.store, app.machine, i.ref) for i in app.store.installed("llm")]
    )
    binary = find_llama_bench() if native else None
    if native and binary is None:
        status("llama-bench not built: run 'make bench-native' for the native comparison")
    rows = []
    for item in items:
        status(f"benchmarking {item.label} ...")
        try:
            figures = measure_in_child(item.path, item.label, threads, repetitions=repetitions, native=binary)
        except BackendError as exc:
            status(str(exc))
            continue
        row: dict[str, Any] = as_dict(figures)
        bound = bandwidth / figures.file_bytes
        row["bandwidth_bound_tps"] = bound
        row["tg_vs_bound"] = figures.tg_tps / bound
        rows.append(row)
    return rows


def _print_llm(rows: list[dict[str, Any]], bandwidth: float) -> None:
    click.echo(
        f"\nLanguage models (threads={rows[0]['threads'] if rows else '?'}; medians; "
        f"memory read bandwidth {bandwidth / 1e9:.1f} GB/s)"
    )
    for r in rows:
        mib = r["file_bytes"] / 2**20
        click.echo(
            f"- {r['model']} ({mib:.0f} MiB): load {r['load_s']:.2f} s, peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB"
        )
        native = r.get("native_build")
        pp_ref = f" | llama-bench {r['native_pp_tps']:.1f} -> ratio {r['pp_ratio']:.3f}" if native else ""
        tg_ref = f" | llama-bench {r['native_tg_tps']:.1f} -> ratio {r['tg_ratio']:.3f}" if native else ""
        click.echo(f"    pp{r['pp_tokens']}: {r['pp_tps']:.1f} tok/s{pp_ref}   pp512: {r['pp512_tps']:.1f} tok/s")
        click.echo(f"    tg{r['tg_tokens']}: {r['tg_tps']:.1f} tok/s{tg_ref}   tg128: {r['tg128_tps']:.1f} tok/s")
        click.echo(
            f"    bandwidth bound {r['bandwidth_bound_tps']:.1f} tok/s -> tg at {r['tg_vs_bound']:.0%} of it;"
            f" generation with sampling {r['stream_tps']:.1f} tok/s"
        )
        click.echo(
            f"    time to first token: {r['ttft_cold_s'] * 1000:.0f} ms cold, {r['ttft_cached_s'] * 1000:.0f} ms "
            f"with the system prompt cached ({r['cached_tokens']} of {r['prompt_tokens']} prompt tokens reused)"
        )
        if native:
            click.echo(f"    llama.cpp build {native} (ratios: median of rounds interleaving ours and llama-bench)")


@click.command()
@click.option("-m", "--model", "models", multiple=True, help="Model to measure (repeatable) [default: all installed].")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads [default: physical cores].")
@click.option("-r", "--repetitions", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--native/--no-native", default=True, show_default=True, help="Compare with llama.cpp's llama-bench.")
@json_option
@pass_app
def bench(
    app: App, models: tuple[str, ...], threads: int | None, repetitions: int, native: bool, as_json: bool
) -> None:
    """Measure load, prompt and generation speed, time to first token and memory, against llama.cpp itself."""
    threads = threads or app.machine.physical_cores
    status("measuring memory bandwidth ...")
    bw1 = measure_read_bandwidth(1)
    bandwidth = measure_read_bandwidth(threads) if threads > 1 else bw1
    machine = {
        "arch": app.machine.arch,
        "cores": app.machine.physical_cores,
        "features": app.machine.feature_line(),
        "read_bandwidth_1_thread": bw1,
        f"read_bandwidth_{threads}_threads": bandwidth,
    }
    llm_rows = _llm_section(app, models, threads, repetitions, native, bandwidth)
    if as_json:
        emit_json({"machine": machine, "llm": llm_rows})
        return
    click.echo(
        f"machine: {app.machine.arch}, {app.machine.physical_cores} cores ({app.machine.feature_line()}); "
        f"read bandwidth {bw1 / 1e9:.1f} GB/s on 1 thread, {bandwidth / 1e9:.1f} GB/s on {threads}"
    )
    if llm_rows:
        _print_llm(llm_rows, bandwidth)
