"""`edge-assistant bench`: the figures behind our speed targets, printed (never asserted in tests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..bench.bandwidth import measure_read_bandwidth
from ..bench.footprint import as_dict as footprint_dict
from ..bench.footprint import footprint_in_child
from ..bench.llm import as_dict, measure_in_child
from ..bench.native import find_llama_bench
from ..bench.twins import Twin, prepare
from ..errors import BackendError
from ..gguf import bytes_per_token, read_gguf
from ..hardware import cpu_name
from ..llm.select import choose
from ..measured import render as render_measured
from ..settings import VOICE_SILENCE, EndpointSettings, ListenSettings, LlmSettings
from ..stt.whisper import BEST_OF
from .common import App, emit_json, json_option, pass_app, status

if TYPE_CHECKING:
    from ..stt.recognizer import Recognizer
    from ..tts.speaker import Speaker


@dataclass(frozen=True)
class _Subject:
    path: Path
    label: str
    family: str | None
    twin: Twin | None = None


def _subjects(app: App, specs: tuple[str, ...], twins: list[Twin]) -> list[_Subject]:
    if not specs and twins:
        return [_Subject(t.path, t.label, t.model.family, t) for t in twins]
    chosen = [choose(app.store, app.machine, s) for s in specs] or [
        choose(app.store, app.machine, i.ref) for i in app.store.installed("llm")
    ]
    out = [_Subject(c.path, c.label, c.model.family if c.model else None) for c in chosen]
    return out + [_Subject(t.path, t.label, t.model.family, t) for t in twins]


def _llm_section(
    app: App, subjects: list[_Subject], threads: int, repetitions: int, native: bool, bandwidth: float
) -> list[dict[str, Any]]:
    binary = find_llama_bench() if native else None
    if native and binary is None:
        status("llama-bench not built: run 'make bench-native' for the native comparison")
    rows = []
    cache = app.paths.home / "cache" / "bench"
    for item in subjects:
        status(f"benchmarking {item.label} ...")
        try:
            figures = measure_in_child(item.path, item.label, threads, repetitions=repetitions, native=binary)
            status(f"memory of {item.label} with the speech models ...")
            footprint = footprint_in_child(item.path, item.label, item.family, threads, LlmSettings.ctx_cap, cache)
        except BackendError as exc:
            status(str(exc))
            continue
        row: dict[str, Any] = as_dict(figures)
        per_token = item.twin.bytes_per_token if item.twin else bytes_per_token(read_gguf(item.path))
        bound = bandwidth / per_token
        row["bytes_per_token"] = per_token
        row["bandwidth_bound_tps"] = bound
        row["tg_vs_bound"] = figures.tg_tps / bound
        row["footprint"] = footprint_dict(footprint)
        if item.twin:
            row["twin_of"] = f"{item.twin.model.id}:{item.twin.quant}"
            row["real_file_bytes"] = item.twin.real_bytes
        rows.append(row)
    return rows


def _print_llm(rows: list[dict[str, Any]], bandwidth: float) -> None:
    click.echo(
        f"\nLanguage models (threads={rows[0]['threads'] if rows else '?'}; medians; "
        f"memory read bandwidth {bandwidth / 1e9:.1f} GB/s)"
    )
    for r in rows:
        mib = r["file_bytes"] / 2**20
        real = r.get("real_file_bytes")
        twin = f"; the real file is {real / 2**20:.0f} MiB" if real else ""
        click.echo(
            f"- {r['model']} ({mib:.0f} MiB{twin}): load {r['load_s']:.2f} s, peak RSS "
            f"{r['peak_rss_bytes'] / 2**20:.0f} MiB alone"
        )
        f = r["footprint"]
        click.echo(
            f"    peak RSS with {f['stt']} + {f['voice']} (one turn, ctx {f['ctx']}): {f['after_llm'] / 2**20:.0f} MiB "
            f"(speech recognition {f['after_stt'] / 2**20:.0f} MiB, + voice {f['after_voice'] / 2**20:.0f} MiB)"
        )
        native = r.get("native_build")
        pp_ref = f" | llama-bench {r['native_pp_tps']:.1f} -> ratio {r['pp_ratio']:.3f}" if native else ""
        tg_ref = f" | llama-bench {r['native_tg_tps']:.1f} -> ratio {r['tg_ratio']:.3f}" if native else ""
        click.echo(f"    pp{r['pp_tokens']}: {r['pp_tps']:.1f} tok/s{pp_ref}   pp512: {r['pp512_tps']:.1f} tok/s")
        click.echo(f"    tg{r['tg_tokens']}: {r['tg_tps']:.1f} tok/s{tg_ref}   tg128: {r['tg128_tps']:.1f} tok/s")
        click.echo(
            f"    bandwidth bound {r['bandwidth_bound_tps']:.1f} tok/s ({r['bytes_per_token'] / 2**20:.0f} MiB "
            f"read per token) -> tg at {r['tg_vs_bound']:.0%} of it;"
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


def _hearing(app: App, detector: str = EndpointSettings.detector) -> tuple[Recognizer, Speaker, Path]:
    """The voice sections' recognizer (the assistant's, with the bench's silence), English voice and cache."""
    from ..modes.parts import recognizer_for
    from ..tts.select import make_speaker

    listen = ListenSettings(silence=VOICE_SILENCE, voice_detector=detector)
    recognizer = recognizer_for(app.store, app.machine, listen, fast=True)
    speaker = make_speaker(app.store, None, "en", app.machine.physical_cores)
    return recognizer, speaker, app.paths.home / "cache" / "bench"


def _voice_section(app: App, spec: str | None) -> dict[str, Any]:
    from ..bench.bargein import as_dict as barge_dict
    from ..bench.bargein import measure_barge_in
    from ..bench.voice import as_dict as voice_dict
    from ..bench.voice import measure_voice
    from .common import backend

    recognizer, speaker, cache = _hearing(app)
    llm = backend(app, LlmSettings(model=spec))
    status(f"measuring the voice loop ({recognizer.name} -> {llm.name} -> {speaker.name}), in real time ...")
    model_args = ["-m", spec] if spec else []
    figures = voice_dict(measure_voice(recognizer, llm, speaker, cache, model_args))
    status("measuring barge-in by voice in a virtual room (echo cancellation on) ...")
    figures["barge_in"] = barge_dict(measure_barge_in(model_args, speaker, cache))
    return figures


def _turns_section(app: App, spec: str | None) -> dict[str, Any]:
    """The voice section's false cuts alone (not in real time): quick to run after a change to turn-taking."""
    from ..bench.voice import VoiceFigures, as_dict, count_false_cuts
    from .common import backend

    recognizer, speaker, cache = _hearing(app)
    llm = backend(app, LlmSettings(model=spec))
    status(f"counting answers given half-way ({recognizer.name}, {llm.name}, questions said by {speaker.name}) ...")
    figures = VoiceFigures(recognizer.name, "", speaker.name)
    try:
        count_false_cuts(recognizer, speaker, cache, figures, llm)
    finally:
        recognizer.close()
        llm.close()
    return as_dict(figures)


def _noise_section(app: App) -> list[dict[str, Any]]:
    """The voice questions in steady noise, through the assistant's recognizer and turn-taking."""
    from ..bench.noise import SNR_DB, as_dict, measure_noise

    rows = []
    for detector in ("energy", "silero", "auto"):
        recognizer, speaker, cache = _hearing(app, detector)
        status(
            f"listening in noise at {SNR_DB:g} dB ({recognizer.name}, {detector} detector, questions said by "
            f"{speaker.name}) ..."
        )
        try:
            rows += as_dict(measure_noise(recognizer, speaker, cache, detector))
        finally:
            recognizer.close()
    return rows


def _print_noise(rows: list[dict[str, Any]]) -> None:
    from ..bench.noise import NOISE_ALONE, SNR_DB

    click.echo(f"\nListening in noise ({SNR_DB:g} dB below the speech; {NOISE_ALONE:g} s of the noise alone first)")
    for r in rows:
        click.echo(
            f"- {r['noise']}, {r['detector']} detector: {len(r['heard'])} turns taken on {r['questions']} questions: "
            f"{r['phantoms']} where nobody spoke, {r['run_together']} running questions together; {r['cut']} "
            f"questions heard as two turns, {r['missed']} not heard; word error rate {r['wer']:.1%}"
        )


def _print_voice(v: dict[str, Any]) -> None:
    def ms(stats: dict[str, float]) -> str:
        return (
            f"median {stats['median_s'] * 1000:.0f} ms, p95 {stats['p95_s'] * 1000:.0f} ms, worst "
            f"{stats['worst_s'] * 1000:.0f} ms over {stats['n']:.0f} questions"
        )

    if v["llm"]:
        click.echo(f"\nVoice ({v['stt']} -> {v['llm']} -> {v['voice']}; a conversation, questions paced in real time)")
    else:
        click.echo(f"\nTurn-taking ({v['stt']}, the questions said by {v['voice']})")
    if v["listener_stats"]:
        click.echo(f"- end of speech -> first audible answer, as a listener hears it: {ms(v['listener_stats'])}")
    elif v["listener_note"]:
        click.echo(f"- {v['listener_note']}")
    if v["in_process_stats"] and v["parts"]:
        p = v["parts"]
        click.echo(
            f"- in process, end of speech -> first spoken audio ready: {ms(v['in_process_stats'])}; parts (from "
            f"the endpointer's end of speech): turn over and words known {p['turn_end_s'] * 1000:.0f} ms, first "
            f"token {p['ttft_s'] * 1000:.0f} ms, first sentence {p['first_sentence_s'] * 1000:.0f} ms after the "
            f"request, its synthesis to the first piece {p['tts_s'] * 1000:.0f} ms"
            + (
                f" (the {v['in_process_stats']['n'] - v['drafted']:.0f} answers not begun during the wait)"
                if v["drafted"]
                else ""
            )
        )
    if v.get("draft_stop_stats"):
        stops = v["draft_stop_stats"]
        click.echo(
            f"- answers begun during the wait after words left without a closing mark: {v['drafted']} of the questions "
            f"above; one dropped when the voice comes back stops within median {stops['median_s'] * 1000:.0f} ms, "
            f"worst {stops['worst_s'] * 1000:.0f} ms (over {stops['n']:.0f} drops at 0-0.45 s into it)"
        )
    click.echo(
        f"- answered half-way: {v['hesitation_cuts']} of {v['hesitations']} questions with a 0.35-0.65 s pause to "
        f"think inside ({v['hesitation_cut_rate']:.0%}); {v['whole_first_cuts']} of {v['whole_firsts']} paused after "
        "words that already make a request"
    )
    for heard in v.get("cut", []):
        click.echo(f"    heard as two turns after a pause of {heard}")
    b = v.get("barge_in") or {}
    if b.get("note"):
        click.echo(f"- {b['note']}")
    if b.get("interruptions") or b.get("answers"):
        delays = b["delay_stats"]
        heard = f"median {delays['median_s'] * 1000:.0f} ms, worst {delays['worst_s'] * 1000:.0f} ms" if delays else "-"
        click.echo(
            f"- barge-in by voice (echo cancellation, the speaker looped into the microphone at half level): "
            f"{len(b['delays'])} answers stopped by a person talking over them ({heard} from the onset of "
            f"the speech to silence), the new question answered {b['answered_after']} times; "
            f"{b['false_interruptions']} of {b['answers']} other answers stopped by their own voice, "
            f"{b['echo_turns']} turns taken on its own voice heard back"
        )


def _record(app: App, machine: dict[str, Any], threads: int, bandwidth: float, rows: list[dict[str, Any]]) -> None:
    """Keep the twins' figures where `models recommend` looks for this machine's own measurements."""
    target = app.paths.home / "measured.toml"
    header = f"Measured by edge-assistant bench --synthetic on {machine['name']} ({threads} threads)."
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_measured(str(machine["name"]), threads, bandwidth, rows, header), encoding="utf-8")
    status(f"measurements kept in {target} (models recommend uses them)")


def _notes_section(app: App, rounds: int, minutes: tuple[float, ...]) -> dict[str, Any] | None:
    from ..bench.notes import NotesFigures, measure_notes
    from ..bench.stt import bench_speech
    from ..modes.parts import recognizer_for
    from ..stt.whisper import WhisperRecognizer

    listen = ListenSettings(engine="whisper")
    recognizer = recognizer_for(app.store, app.machine, listen)
    if not isinstance(recognizer, WhisperRecognizer):
        return None
    speech = bench_speech(app.paths.home / "cache" / "bench")
    for item in measure_notes(recognizer, recognizer.name, speech, rounds, minutes):
        if isinstance(item, NotesFigures):
            return item.as_dict()
        status(item)
    return None


def _print_notes(n: dict[str, Any]) -> None:
    click.echo(
        f"\nNotes from a recording ({n['model']}, {n['threads']} threads, int8, beam 5, {BEST_OF} fallback "
        f"candidates, VAD; a meeting-like "
        f"{n['audio_s'] / 60:.0f} min 48 kHz stereo WAV; medians of {len(n['ours_s'])} interleaved rounds)"
    )
    click.echo(
        f"- transcribe: RTF {n['ours_rtf']:.3f} | faster-whisper directly: RTF {n['direct_rtf']:.3f} -> "
        f"ratio {n['ratio']:.3f}; WER {n['ours_wer']:.1%} | {n['direct_wer']:.1%}"
    )
    peaks = ", ".join(f"{m} min {b / 2**20:.0f} MiB" for m, b in n["peak_rss_bytes"].items())
    click.echo(f"- peak RSS of transcribe: {peaks}")
    click.echo(
        f"- WER on the bench's speech clips: {n['clips_wer_file']:.1%} as a recording (long windows), "
        f"{n['clips_wer_live']:.1%} through the live path (utterances)"
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


SECTIONS = ("llm", "stt", "voice", "turns", "noise", "notes", "serve")


@click.command()
@click.option("-m", "--model", "models", multiple=True, help="Model to measure (repeatable) [default: all installed].")
@click.option(
    "--synthetic",
    multiple=True,
    metavar="MODEL[:QUANT]|seeds",
    help="Measure a synthetic twin of a catalog model (random weights, real shapes; built once, cached); "
    "'seeds' for one per seed family. Repeatable.",
)
@click.option("--only", "sections", multiple=True, type=click.Choice(SECTIONS), help="Run only these sections.")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads [default: physical cores].")
@click.option("-r", "--repetitions", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--native/--no-native", default=True, show_default=True, help="Compare with llama.cpp's llama-bench.")
@click.option(
    "--notes-minutes",
    type=click.FloatRange(0.1, 600),
    multiple=True,
    default=(10.0, 60.0),
    show_default=True,
    help="Recording lengths for the notes section (the first is also the speed comparison's).",
)
@json_option
@pass_app
def bench(
    app: App,
    models: tuple[str, ...],
    synthetic: tuple[str, ...],
    sections: tuple[str, ...],
    threads: int | None,
    repetitions: int,
    native: bool,
    notes_minutes: tuple[float, ...],
    as_json: bool,
) -> None:
    """Measure the language models (load, prompt and generation speed, time to first token, memory, against
    llama.cpp itself), speech recognition (real-time factor, delay of the final text), the voice loop (`turns`:
    only its count of questions answered half-way; `noise`: the questions in pink noise and a fan's), notes
    from long recordings (speed against faster-whisper itself, peak memory, word error rate) and serving over
    Wyoming (against wyoming-faster-whisper and wyoming-piper)."""
    threads = threads or app.machine.physical_cores
    wanted = set(sections or (("llm",) if synthetic and not models else SECTIONS))
    twins = prepare(app.store.catalog, synthetic, threads, status) if synthetic and "llm" in wanted else []
    status("measuring memory bandwidth ...")
    bw1 = measure_read_bandwidth(1)
    bandwidth = measure_read_bandwidth(threads) if threads > 1 else bw1
    machine = {
        "name": cpu_name(),
        "arch": app.machine.arch,
        "cores": app.machine.physical_cores,
        "features": app.machine.feature_line(),
        "read_bandwidth_1_thread": bw1,
        f"read_bandwidth_{threads}_threads": bandwidth,
    }
    subjects = _subjects(app, models, twins) if "llm" in wanted else []
    llm_rows = _llm_section(app, subjects, threads, repetitions, native, bandwidth) if subjects else []
    stt_rows = _stt_section(app) if "stt" in wanted else []
    voice = _voice_section(app, models[0] if models else None) if "voice" in wanted else None
    if voice is None and "turns" in wanted:
        voice = _turns_section(app, models[0] if models else None)
    if twins and llm_rows:
        _record(app, machine, threads, bandwidth, [r for r in llm_rows if r.get("twin_of")])
    noise = _noise_section(app) if "noise" in wanted else []
    notes = _notes_section(app, min(repetitions, 3), notes_minutes) if "notes" in wanted else None
    serve_rows = _serve_section(app, repetitions) if "serve" in wanted else []
    if as_json:
        emit_json(
            {
                "machine": machine,
                "llm": llm_rows,
                "stt": stt_rows,
                "voice": voice,
                "noise": noise,
                "notes": notes,
                "serve": serve_rows,
            }
        )
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
    if noise:
        _print_noise(noise)
    if notes:
        _print_notes(notes)
    if serve_rows:
        _print_serve(serve_rows)
