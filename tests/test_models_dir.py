"""The models dir keeps to itself: hostile names, copied or crafted manifests and zip bombs write and delete
nothing outside it."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_assistant.errors import UsageError
from edge_assistant.settings import Paths
from edge_assistant.store import Installed, Store, sha256_file
from tests.fakehub import FakeHub
from tests.ggufmaker import make_gguf
from tests.helpers import run

MIB = 1024 * 1024


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def models_dir() -> Path:
    return Paths.from_env().models


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("o/r/../../../../../../escaped.gguf", "invalid path in repo"),
        ("o/r/sub/../../../escaped.gguf", "invalid path in repo"),
        ("o/r//etc/escaped.gguf", "invalid path in repo"),
        ("o/r/..\\..\\escaped.gguf", "invalid path in repo"),
        ("a/../escaped.gguf", "invalid repo id 'a/..'"),
        ("o--x/r/escaped.gguf", "invalid repo id 'o--x/r'"),
    ],
)
def test_a_pull_that_would_leave_its_folder_is_refused_before_any_request(
    hub: FakeHub, tmp_path: Path, spec: str, why: str
) -> None:
    repo, _, file = spec.partition("/")[2].partition("/")
    hub.add_file(spec.split("/")[0] + "/" + repo, file, make_gguf(4096))
    code, out, err = run("models", "pull", spec, "-q")
    assert code == 2 and out == ""
    assert err.startswith(f"error: {why}") and len(err.strip().splitlines()) == 1, err
    assert hub.requests == []
    assert not list(tmp_path.rglob("escaped.gguf"))


def _install(store: Store, model_id: str, data: bytes) -> Installed:
    quant = store.catalog.llm(model_id).quant("Q4_K_M")
    target = store.llm_file(model_id, quant.file)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    return store.record(Installed("llm", model_id, "Q4_K_M", target, len(data), "hub", sha256=sha256_file(target)))


def test_a_copied_models_dir_stands_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Store(tmp_path / "original")
    item = _install(original, "smollm2-360m-instruct", make_gguf(4096))
    manifest = next((original.root / "manifests").rglob("*.json"))
    assert not Path(json.loads(manifest.read_text())["path"]).is_absolute()
    copy = tmp_path / "usb-stick"
    shutil.copytree(original.root, copy)
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(copy))
    code, out, _ = run("models", "path", "smollm2-360m-instruct:Q4_K_M")
    assert code == 0 and Path(out.strip()) == copy / item.path.relative_to(original.root)
    code, _, err = run("models", "rm", "smollm2-360m-instruct")
    assert code == 0, err
    assert item.path.exists(), "removing from the copy deleted the original's file"
    assert not (copy / item.path.relative_to(original.root)).exists()


def test_a_manifest_of_an_older_version_names_the_same_place_in_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifests written before paths were relative hold absolute ones."""
    original = Store(tmp_path / "original")
    item = _install(original, "smollm2-360m-instruct", make_gguf(4096))
    manifest = next((original.root / "manifests").rglob("*.json"))
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "path": str(item.path)}))
    copy = tmp_path / "copy"
    shutil.copytree(original.root, copy)
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(copy))
    code, _, err = run("models", "rm", "smollm2-360m-instruct")
    assert code == 0, err
    assert item.path.exists() and not (copy / item.path.relative_to(original.root)).exists()


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_crafted_manifest_cannot_get_a_folder_outside_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    root = tmp_path / "models"
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(root))
    (root / "manifests" / "stt").mkdir(parents=True)
    path = str(victim) if how == "absolute" else "../precious"
    record = {"kind": "stt", "id": "vosk-small-en-us-0.15", "quant": None, "path": path, "bytes": 1, "source": "url"}
    (root / "manifests" / "stt" / "vosk-small-en-us-0.15.json").write_text(json.dumps(record))
    monkeypatch.chdir(root)  # wherever a relative path is taken from, it must not reach the victim
    code, _, err = run("models", "rm", "vosk-small-en-us-0.15")
    assert code == 2 and "is not installed" in err
    assert (victim / "thesis.txt").read_text() == "years of work"


def test_writes_and_deletes_outside_the_models_dir_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store = Store(tmp_path / "models")
    store.root.mkdir()
    (store.root / "hub").symlink_to(outside, target_is_directory=True)
    target = store.hub_file("o/r", "x.gguf")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    with pytest.raises(UsageError, match="outside the models dir"):
        store.record(Installed("llm", "o/r", "x.gguf", target, 1, "hub"))
    with pytest.raises(UsageError, match="outside the models dir"):
        store.remove(Installed("llm", "o/r", "x.gguf", target, 1, "hub"))
    assert (outside / "o" / "r" / "x.gguf").exists()
    assert not (store.root / "manifests").exists()


VOSK_ENTRY = """
[[stt]]
id = "vosk-test"
name = "Vosk test"
engine = "vosk"
language = "en"
url = "{url}"
{more}
"""


def _zip_bomb(path: Path, unpacked: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("vosk-model-test/am/final.mdl", b"am")
        zf.writestr("vosk-model-test/conf/model.conf", b"c")
        with zf.open("vosk-model-test/graph/HCLr.fst", "w", force_zip64=True) as f:
            block = bytes(MIB)
            for _ in range(unpacked // MIB):
                f.write(block)
    return path


def test_a_zip_bomb_is_refused_before_unpacking(hub: FakeHub, hermetic: Path, tmp_path: Path) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.zip", 300 * MIB).read_bytes()
    url = hub.add_blob("vosk/bomb.zip", bomb)
    hermetic.mkdir(parents=True, exist_ok=True)
    (hermetic / "catalog.toml").write_text(VOSK_ENTRY.format(url=url, more=f"bytes = {len(bomb)}"))
    code, _, err = run("models", "pull", "vosk-test", "-q")
    assert code == 1 and "unpacks to more than" in err and "refused" in err, err
    assert not (models_dir() / "stt" / "vosk-test").exists()
    unpacked = sum(p.stat().st_size for p in models_dir().rglob("*") if p.is_file())
    assert unpacked < 10 * MIB, f"{unpacked} bytes were written"


@pytest.mark.parametrize(
    "more",
    ['archive_root = "../.."', 'archive_root = "/etc"', 'repo = "o/r"\nfiles = ["../../escape.onnx"]'],
)
def test_paths_in_a_user_catalog_are_checked(hub: FakeHub, hermetic: Path, more: str) -> None:
    hermetic.mkdir(parents=True, exist_ok=True)
    (hermetic / "catalog.toml").write_text(VOSK_ENTRY.format(url=hub.add_blob("v.zip", b"PK"), more=more))
    code, _, err = run("models", "pull", "vosk-test", "-q")
    assert code == 2 and "catalog.toml: stt vosk-test: invalid" in err, err
    assert len(err.strip().splitlines()) == 1 and hub.requests == []
