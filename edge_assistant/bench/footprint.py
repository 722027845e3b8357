"""Peak memory of the whole assistant: a language model with the default speech recognizer and voice loaded
and used, in one fresh process (as `edge-assistant assistant` holds them)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BackendError
from .llm import peak_rss

STT_MODEL = "whisper-tiny.en"
ANSWER = "Mount Everest is the tallest mountain in the world, at about eight thousand eight hundred metres."


@dataclass(frozen=True)
class Footprint:
    """Peak resident memory (VmHWM) in bytes after each part joined, in the order the assistant loads them."""

    model: str
    stt: str
    voice: str
    ctx: int
    after_stt: int
    after_voice: int
    after_llm: int
    """The peak of the whole turn: speech recognised, an answer generated, the answer spoken."""


def current_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure_footprint(path: Path, name: str, family: str | None, threads: int, ctx: int, cache: Path) -> Footprint:
    """Load the recognizer and the voice before the model (as the assistant does), run one full turn."""
    from ..audio.sources import FileSource
    from ..catalog import load_catalog
    from ..llm.local import LlamaCppBackend
    from ..llm.options import GenerationOptions, Message, Reply
    from ..settings import Paths
    from ..store import Store
    from ..stt.select import make_recognizer
    from ..tts.select import make_speaker
    from .llm import SYSTEM
    from .stt import bench_speech

    paths = Paths.from_env()
    store = Store(paths.models, load_catalog(paths.catalog_file))
    speech = bench_speech(cache)
    recognizer = make_recognizer(store, model=STT_MODEL, threads=threads, fast=True)
    recognizer.open()
    heard = [u.text for u in recognizer.stream(FileSource(speech).chunks()) if u.final]
    after_stt = peak_rss()
    speaker = make_speaker(store, None, "en", threads)
    speaker.open()
    speaker.synthesize(ANSWER)
    after_voice = peak_rss()
    backend = LlamaCppBackend(path, name=name, family=family, threads=threads, ctx_cap=ctx)
    backend.open()
    backend.warm(SYSTEM)
    question = heard[0] if heard else "What is the tallest mountain in the world?"
    options = GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=48, stop=("\x00",))
    for _ in backend.stream([*SYSTEM, Message("user", question)], options, Reply()):
        pass
    speaker.synthesize(ANSWER)
    after_llm = peak_rss()
    backend.close()
    speaker.close()
    recognizer.close()
    return Footprint(name, recognizer.name, speaker.name, backend.context_length, after_stt, after_voice, after_llm)


def footprint_in_child(
    path: Path, name: str, family: str | None, threads: int, ctx: int, cache: Path, timeout: float = 1200
) -> Footprint:
    """`measure_footprint` in a fresh interpreter, so the peak is this turn's alone."""
    code = (
        "import json,sys; from dataclasses import asdict; from pathlib import Path; "
        "from edge_assistant.bench.footprint import measure_footprint; a=json.loads(sys.argv[1]); "
        "print(json.dumps(asdict(measure_footprint(Path(a['path']), a['name'], a['family'], a['threads'], "
        "a['ctx'], Path(a['cache'])))))"
    )
    args = {"path": str(path), "name": name, "family": family, "threads": threads, "ctx": ctx, "cache": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"memory footprint of {name} failed: {last}")
    return Footprint(**json.loads(proc.stdout.strip().splitlines()[-1]))


def as_dict(figures: Footprint) -> dict[str, object]:
    return asdict(figures)
