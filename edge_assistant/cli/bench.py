"""`edge-assistant bench`: the figures behind our speed targets, printed (never asserted in tests)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import click

from ..bench.bandwidth import measure_read_bandwidth
from ..bench.llm import as_dict, measure_in_child
from ..bench.native import find_llama_bench
from ..errors import BackendError
from ..llm.select import choose
from ..settings import VOICE_SILENCE, ListenSettings, LlmSettings
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


def _stt_section(app: App) -> list[dict[str, Any]]:
    from ..bench.stt import bench_speech, measure_stt
    from ..modes.parts import recognizer_for

    speech = bench_speech(app.paths.home / "cache" / "bench")
    listen = ListenSettings()
    endpoint = listen.endpoint()
    rows = []
    for item in app.store.installed("stt"):
        status(f"benchmarking {item.ref} ...")
        recognizer = recognizer_for(app.store, app.machine, replace(listen, stt_model=item.id))
        try:
            figures = measure_stt(recognizer, speech, endpoint)
        finally:
            recognizer.close()
        rows.append({**asdict(figures), "end_of_speech_to_text_s": figures.end_of_speech_to_text_s})
    return rows


def _print_stt(rows: list[dict[str, Any]]) -> None:
    click.echo(
        "\nSpeech to text (a fixed ~30 s English speech file: real-time factor as fast as it goes; delay of the "
        "final text with the audio paced in real time)"
    )
    for r in rows:
        click.echo(
            f"- {r['model']} ({r['engine']}): RTF {r['rtf']:.3f} on {r['audio_s']:.1f} s, {r['utterances']} "
            f"utterances; final text {r['end_of_speech_to_text_s'] * 1000:.0f} ms after the end of speech "
            f"({r['endpoint_wait_s'] * 1000:.0f} ms endpointing silence + "
            f"{r['final_after_endpoint_s'] * 1000:.0f} ms recognition)"
        )


def _voice_section(app: App, spec: str | None) -> dict[str, Any]:
    from ..bench.voice import as_dict as voice_dict
    from ..bench.voice import measure_voice
    from ..modes.parts import recognizer_for
    from ..tts.select import make_speaker
    from .common import backend

    listen = ListenSettings(silence=VOICE_SILENCE)
    recognizer = recognizer_for(app.store, app.machine, listen, fast=True)
    speaker = make_speaker(app.store, None, "en", app.machine.physical_cores)
    llm = backend(app, LlmSettings(model=spec))
    status(f"measuring voice latency ({recognizer.name} -> {llm.name} -> {speaker.name}), in real time ...")
    return voice_dict(measure_voice(recognizer, llm, speaker, app.paths.home / "cache" / "bench", listen.silence))


def _print_voice(v: dict[str, Any]) -> None:
    click.echo(
        f"\nVoice: end of speech -> first spoken audio ({v['stt']} -> {v['llm']} -> {v['voice']}; "
        f"{v['turns']} questions in real time)"
    )
    p = v["parts"]
    click.echo(
        f"- median {v['first_audio_s'] * 1000:.0f} ms (worst {v['worst_s'] * 1000:.0f} ms): endpointing "
        f"{p.get('endpoint_s', 0) * 1000:.0f} + recognition {p.get('stt_s', 0) * 1000:.0f} + first token "
        f"{p.get('ttft_s', 0) * 1000:.0f} ms, first sentence at {p.get('first_sentence_s', 0) * 1000:.0f} ms, "
        f"its synthesis {p.get('tts_s', 0) * 1000:.0f} ms"
    )


def _serve_section(app: App, repetitions: int) -> list[dict[str, Any]]:
    from ..bench.serve import make_clips, measure_serve, ours, peers
    from ..modes.parts import speaker_for
    from ..stt.select import choose_stt

    cache = app.paths.home / "cache" / "bench"
    speaker = speaker_for(app.store, app.machine, None, "en")
    clips = make_clips(cache, speaker)
    whisper, _, _ = choose_stt(app.store, "whisper", None, "en")
    voice = getattr(speaker, "model_path", None)
    services = [ours(app.paths.home)]
    peer = peers(whisper, voice, app.machine.physical_cores, cache / "peers") if voice else None
    if peer is None:
        status("wyoming-faster-whisper and wyoming-piper are not installed (make bench installs them): ours alone")
    else:
        services.append(peer)
    status("measuring the Wyoming services in real time (a minute or two each) ...")
    rounds = 1 if repetitions == 1 else 2
    return [f.summary() for f in measure_serve(services, clips, app.paths.home, rounds, notify=status)]


def _print_serve(rows: list[dict[str, Any]]) -> None:
    from ..bench.serve import TAIL

    click.echo(
        f"\nServing over Wyoming (Whisper tiny.en int8 beam 5, Piper en_US joe medium; clips of 2-12 s streamed in "
        f"real time, ending with {TAIL:g} s of silence; services take turns)"
    )
    for r in rows:
        click.echo(
            f"- {r['name']}: transcript {r['transcript_mean_s'] * 1000:.0f} ms after the end of the audio (mean; "
            f"p95 {r['transcript_p95_s'] * 1000:.0f} ms; WER {r['wer']:.1%}), first audio chunk "
            f"{r['first_audio_median_s'] * 1000:.0f} ms after the text (median), memory "
            f"{r['memory_mib']:.0f} MiB in {r['processes']} process{'es' if r['processes'] > 1 else ''}"
        )


SECTIONS = ("llm", "stt", "voice", "serve")


@click.command()
@click.option("-m", "--model", "models", multiple=True, help="Model to measure (repeatable) [default: all installed].")
@click.option("--only", "sections", multiple=True, type=click.Choice(SECTIONS), help="Run only these sections.")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads [default: physical cores].")
@click.option("-r", "--repetitions", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--native/--no-native", default=True, show_default=True, help="Compare with llama.cpp's llama-bench.")
@json_option
@pass_app
def bench(
    app: App,
    models: tuple[str, ...],
    sections: tuple[str, ...],
    threads: int | None,
    repetitions: int,
    native: bool,
    as_json: bool,
) -> None:
    """Measure the language models (load, prompt and generation speed, time to first token, memory, against
    llama.cpp itself), speech recognition (real-time factor, delay of the final text), the voice loop, and
    serving over Wyoming (against wyoming-faster-whisper and wyoming-piper)."""
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
    wanted = set(sections or SECTIONS)
    llm_rows = _llm_section(app, models, threads, repetitions, native, bandwidth) if "llm" in wanted else []
    stt_rows = _stt_section(app) if "stt" in wanted else []
    voice = _voice_section(app, models[0] if models else None) if "voice" in wanted else None
    serve_rows = _serve_section(app, repetitions) if "serve" in wanted else []
    if as_json:
        emit_json({"machine": machine, "llm": llm_rows, "stt": stt_rows, "voice": voice, "serve": serve_rows})
        return
    click.echo(
        f"machine: {app.machine.arch}, {app.machine.physical_cores} cores ({app.machine.feature_line()}); "
        f"read bandwidth {bw1 / 1e9:.1f} GB/s on 1 thread, {bandwidth / 1e9:.1f} GB/s on {threads}"
    )
    if llm_rows:
        _print_llm(llm_rows, bandwidth)
    if stt_rows:
        _print_stt(stt_rows)
    if voice:
        _print_voice(voice)
    if serve_rows:
        _print_serve(serve_rows)
