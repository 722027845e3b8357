"""Language model figures through our own runtime: load, prompt processing, generation, TTFT, memory.

pp and tg follow llama-bench's method so the two can be compared: pp evaluates N prompt tokens as one
batch on an empty context; tg decodes N tokens one at a time. Both go through the same llama-cpp-python
context the backend uses. `stream_tps` is generation through the backend's stream (sampling included),
what a user sees. Each model runs in a child process so load time and peak memory are its own.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BackendError
from ..llm.local import LlamaCppBackend
from ..llm.options import GenerationOptions, Message, Reply

SYSTEM = [Message("system", "You are a helpful voice assistant. Answer in one or two short sentences, no lists.")]
QUESTION = Message("user", "What is the tallest mountain in the world?")


@dataclass(frozen=True)
class LlmFigures:
    """Medians over the repetitions."""

    model: str
    file_bytes: int
    threads: int
    load_s: float
    pp_tokens: int
    pp_tps: float
    pp512_tps: float
    tg_tokens: int
    tg_tps: float
    tg128_tps: float
    stream_tps: float
    ttft_cold_s: float
    """Time to first token with the system prompt evaluated in the request."""
    ttft_cached_s: float
    """Time to first token with the system prompt's KV state reused."""
    prompt_tokens: int
    cached_tokens: int
    peak_rss_bytes: int
    native_pp_tps: float | None = None
    """llama-bench on the same model, threads and token counts, measured in rounds interleaved with ours."""
    native_tg_tps: float | None = None
    native_build: str | None = None
    pp_ratio: float | None = None
    """Median over the rounds of ours / native."""
    tg_ratio: float | None = None


def peak_rss() -> int:
    """Peak resident memory of this process in bytes (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _clear(backend: LlamaCppBackend) -> None:
    backend.reset()
    backend.llm._ctx.kv_cache_clear()


def _pp(backend: LlamaCppBackend, n: int, rng: random.Random) -> float:
    tokens = [rng.randrange(backend.llm.n_vocab()) for _ in range(n)]
    _clear(backend)
    start = time.perf_counter()
    backend.llm.eval(tokens)
    return n / (time.perf_counter() - start)


def _tg(backend: LlamaCppBackend, n: int, rng: random.Random) -> float:
    _clear(backend)
    token = backend.llm.token_bos()
    start = time.perf_counter()
    for _ in range(n):
        backend.llm.eval([token])
        token = rng.randrange(backend.llm.n_vocab())
    return n / (time.perf_counter() - start)


def _ttft(backend: LlamaCppBackend, cached: bool) -> tuple[float, int, int]:
    _clear(backend)
    if cached:
        backend.warm(SYSTEM)
    reply = Reply()
    stream = backend.stream(
        [*SYSTEM, QUESTION], GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=8), reply
    )
    next(stream)
    stream.close()
    return reply.timings.ttft, reply.timings.prompt_tokens, reply.timings.cached_tokens


def _stream_tps(backend: LlamaCppBackend, n: int) -> float:
    _clear(backend)
    reply = Reply()
    options = GenerationOptions(temperature=0.7, seed=1, max_tokens=n, stop=("\x00",))
    for _ in backend.stream(
        [*SYSTEM, Message("user", "Tell me a long story about a lighthouse keeper.")], options, reply
    ):
        pass
    return reply.timings.tokens_per_s


def measure(
    path: Path,
    name: str,
    threads: int,
    pp: int = 64,
    tg: int = 64,
    repetitions: int = 5,
    native: str | None = None,
    rounds: int = 3,
) -> LlmFigures:
    """Run every measurement on one model in this process.

    pp and tg run in `rounds`; with a llama-bench binary, each round also runs it, so both see the same
    machine load (these machines are shared) and the ratio is the median of the rounds' ratios.
    """
    from .native import run_llama_bench

    rng = random.Random(0)
    backend = LlamaCppBackend(path, name=name, threads=threads, ctx_cap=1024)
    backend.open()
    pps, tgs, nat_pp, nat_tg, pp_ratios, tg_ratios = [], [], [], [], [], []
    build = None
    try:
        _pp(backend, pp, rng)
        _tg(backend, 8, rng)  # warm-up, as llama-bench does
        for _ in range(rounds):
            pps.append(statistics.median(_pp(backend, pp, rng) for _ in range(repetitions)))
            tgs.append(statistics.median(_tg(backend, tg, rng) for _ in range(repetitions)))
            if native:
                ref = run_llama_bench(Path(native), path, threads=threads, pp=pp, tg=tg, repetitions=repetitions)
                nat_pp.append(ref.pp_tokens_per_s)
                nat_tg.append(ref.tg_tokens_per_s)
                pp_ratios.append(pps[-1] / ref.pp_tokens_per_s)
                tg_ratios.append(tgs[-1] / ref.tg_tokens_per_s)
                build = ref.build
        pp512 = [_pp(backend, 512, rng) for _ in range(max(1, repetitions // 2))]
        tg128 = [_tg(backend, 128, rng) for _ in range(max(1, repetitions // 2))]
        cold = [_ttft(backend, cached=False) for _ in range(repetitions)]
        warm = [_ttft(backend, cached=True) for _ in range(repetitions)]
        streams = [_stream_tps(backend, 64) for _ in range(max(1, repetitions // 2))]
    finally:
        backend.close()

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    return LlmFigures(
        model=name,
        file_bytes=path.stat().st_size,
        threads=threads,
        load_s=backend.load_seconds,
        pp_tokens=pp,
        pp_tps=statistics.median(pps),
        pp512_tps=statistics.median(pp512),
        tg_tokens=tg,
        tg_tps=statistics.median(tgs),
        tg128_tps=statistics.median(tg128),
        stream_tps=statistics.median(streams),
        ttft_cold_s=statistics.median(c[0] for c in cold),
        ttft_cached_s=statistics.median(w[0] for w in warm),
        prompt_tokens=cold[0][1],
        cached_tokens=warm[0][2],
        peak_rss_bytes=peak_rss(),
        native_pp_tps=median(nat_pp),
        native_tg_tps=median(nat_tg),
        native_build=build,
        pp_ratio=median(pp_ratios),
        tg_ratio=median(tg_ratios),
    )


def measure_in_child(
    path: Path,
    name: str,
    threads: int,
    pp: int = 64,
    tg: int = 64,
    repetitions: int = 5,
    native: Path | None = None,
    timeout: float = 3600,
) -> LlmFigures:
    """`measure` in a fresh interpreter: clean load time and peak memory."""
    code = (
        "import json,sys; from dataclasses import asdict; from pathlib import Path; "
        "from edge_assistant.bench.llm import measure; "
        "a=json.loads(sys.argv[1]); print(json.dumps(asdict(measure(Path(a['path']), a['name'], a['threads'], "
        "a['pp'], a['tg'], a['repetitions'], a['native']))))"
    )
    args = json.dumps(
        {
            "path": str(path),
            "name": name,
            "threads": threads,
            "pp": pp,
            "tg": tg,
            "repetitions": repetitions,
            "native": str(native) if native else None,
        }
    )
    proc = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"benchmark of {name} failed: {last}")
    return LlmFigures(**json.loads(proc.stdout.strip().splitlines()[-1]))


def as_dict(figures: LlmFigures) -> dict[str, object]:
    return asdict(figures)
