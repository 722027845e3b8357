#!/usr/bin/env python3
"""Record a `bench --synthetic seeds --json` run: edge_assistant/measured.toml (what `models recommend` uses)
and the seed table in README.md. Usage: record_seed_bench.py BENCH.json [MACHINE-NAME]"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from edge_assistant.bench.report import pi_lists, seed_table
from edge_assistant.hardware import cpu_name
from edge_assistant.measured import render

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    data = json.loads(Path(sys.argv[1]).read_text())
    machine = sys.argv[2] if len(sys.argv) > 2 else data["machine"].get("name") or cpu_name()
    data["machine"]["name"] = machine
    m = data["machine"]
    bw = next(v for k, v in m.items() if k.startswith("read_bandwidth_") and not k.endswith("_1_thread"))
    header = (
        "Measured by `make bench-seeds` (edge-assistant bench --synthetic seeds) on the development machine:\n"
        f"{machine}, {m['cores']} cores ({m['features']}). Synthetic twins: real shapes and quantization types,\n"
        "random weights. Written by scripts/record_seed_bench.py; `models recommend` reads it."
    )
    (ROOT / "edge_assistant" / "measured.toml").write_text(render(machine, m["cores"], bw, data["llm"], header))
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name, body in (("seeds", seed_table(data)), ("pi", pi_lists())):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        block = f"{start}\n{body}\n{end}"
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _, block=block: block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")
    print("edge_assistant/measured.toml and README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
