"""The models dir: what is installed, manifests, embedded models, verification, removal.

Layout under the models dir:
  llm/<model-id>/<file>.gguf           downloaded GGUF files
  hub/<owner>/<repo>/<file>.gguf       GGUF files pulled by repo path, outside the catalog
  stt/<model-id>/...  tts/<model-id>/...   speech models and voices (folders)
  manifests/<kind>/<key>.json          one record per installed item
  .partial/                            resumable downloads and locks; never read as models
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .catalog import AssetModel, Catalog, Embedded, LlmModel, Quant, load_catalog
from .errors import ModelFileError, NotInstalledError, UsageError
from .files import atomic_write_text, fsync_dir
from .names import inside

CHUNK = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """One installed model: a GGUF file, or a folder for speech models and voices."""

    kind: str
    """llm, stt or tts."""
    id: str
    quant: str | None
    path: Path
    bytes: int
    source: str
    """hub, url or embedded."""
    sha256: str | None = None
    """Of the file (GGUF) or of the downloaded archive (vosk)."""
    repo: str | None = None
    revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    """For folders: relative path -> sha256 of each file."""
    installed_at: str = ""

    @property
    def ref(self) -> str:
        return f"{self.id}:{self.quant}" if self.quant else self.id

    def to_json(self, root: Path) -> dict[str, Any]:
        """The manifest record: the path relative to the models dir `root`, so a copied models dir stands alone."""
        data = asdict(self)
        data["path"] = self.path.relative_to(root).as_posix()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], root: Path) -> Installed:
        return cls(**{**data, "path": root / data["path"]})


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def sha256_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under a folder, by relative path."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def package_dir(package: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Store:
    """A models dir. Cheap to construct; touches the disk only when asked."""

    def __init__(self, root: Path, catalog: Catalog | None = None) -> None:
        self.root = root
        self.catalog = catalog or load_catalog()

    # -- places -----------------------------------------------------------------------------
    @property
    def partial_dir(self) -> Path:
        return self.root / ".partial"

    def llm_file(self, model_id: str, file: str) -> Path:
        return self.root / "llm" / model_id / file

    def hub_file(self, repo: str, file: str) -> Path:
        return self.root / "hub" / repo / file

    def asset_dir(self, asset: AssetModel) -> Path:
        return self.root / asset.kind / asset.id

    def check_inside(self, path: Path) -> Path:
        """`path` if it lies inside the models dir; a UsageError otherwise (nothing outside is written or deleted)."""
        if not inside(self.root, path):
            raise UsageError(f"{path} is outside the models dir {self.root}; refused")
        return path

    def _layout(self, item: Installed) -> Path | None:
        """Where an item of this kind and id lives in this models dir (for manifests that name another dir)."""
        if item.kind == "llm" and item.quant:
            if item.id in self.catalog.llms:
                return self.llm_file(item.id, item.path.name)
            if "/" in item.id:
                return self.hub_file(item.id, item.quant)
            return None
        asset = self.catalog.assets.get(item.id)
        return self.asset_dir(asset) if asset is not None and asset.kind == item.kind else None

    def _manifest(self, kind: str, model_id: str, quant: str | None) -> Path:
        key = model_id.replace("/", "--") + (f"@{quant.replace('/', '--')}" if quant else "")
        return self.root / "manifests" / kind / f"{key}.json"

    @contextmanager
    def lock(self, name: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """An exclusive inter-process lock, e.g. around one download."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        with (self.partial_dir / f"{name}.lock").open("a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- records ----------------------------------------------------------------------------
    def record(self, item: Installed) -> Installed:
        """Write the manifest of a newly installed item (which must lie inside the models dir)."""
        self.check_inside(item.path)
        manifest = self.check_inside(self._manifest(item.kind, item.id, item.quant))
        root = Path(os.path.realpath(self.root))
        record = replace(item, path=Path(os.path.realpath(item.path.parent)) / item.path.name)
        atomic_write_text(manifest, json.dumps(record.to_json(root), indent=2))
        return item

    def _read_manifest(self, path: Path) -> Installed | None:
        """A manifest's item, its path inside this models dir; None when it names nothing here.

        Paths are stored relative to the models dir. An older manifest holds an absolute path: inside this dir
        it is used as is; elsewhere (a copied models dir) it is taken to mean the same place in this dir.
        """
        data = json.loads(path.read_text(encoding="utf-8"))
        stored = Path(str(data["path"]))
        item = Installed.from_json({**data, "path": "."}, self.root)
        if not stored.is_absolute():
            target = self.root / stored
        elif inside(self.root, stored):
            target = stored
        else:
            found = self._layout(replace(item, path=stored))
            if found is None:
                return None
            target = found
        if not inside(self.root, target):
            log.warning("ignoring %s: it names %s, outside the models dir", path, target)
            return None
        return replace(item, path=target)

    def _recorded(self) -> list[Installed]:
        out = []
        for path in sorted((self.root / "manifests").glob("*/*.json")):
            try:
                item = self._read_manifest(path)
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if item is not None:
                out.append(item)
        return out

    def embedded_path(self, embedded: Embedded) -> Path | None:
        """Where a package ships a model, if the package is installed (assembled chunks excluded)."""
        base = package_dir(embedded.package)
        if base is None or embedded.assemble:
            return None
        path = base / embedded.path if embedded.path else base
        return path if path.exists() else None

    def _embedded(self) -> list[Installed]:
        out = []
        for model in self.catalog.llms.values():
            for quant in model.quants.values():
                path = self.embedded_path(quant.embedded) if quant.embedded else None
                if path is not None:
                    out.append(
                        Installed(
                            "llm",
                            model.id,
                            quant.name,
                            path,
                            path.stat().st_size,
                            "embedded",
                            sha256=quant.sha256,
                            repo=model.repo,
                        )
                    )
        for asset in self.catalog.assets.values():
            path = self.embedded_path(asset.embedded) if asset.embedded else None
            if path is not None:
                size = (
                    sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                    if path.is_dir()
                    else path.stat().st_size
                )
                out.append(Installed(asset.kind, asset.id, None, path, size, "embedded", repo=asset.repo))
        return out

    def installed(self, kind: str | None = None) -> list[Installed]:
        """Everything installed: manifests whose files exist, and models shipped by packages."""
        seen: set[tuple[str, str, str | None]] = set()
        out = []
        for item in self._recorded() + self._embedded():
            key = (item.kind, item.id, item.quant)
            if key in seen or not item.path.exists() or (kind and item.kind != kind):
                continue
            seen.add(key)
            out.append(item)
        return out

    def find(self, kind: str, model_id: str, quant: str | None = None) -> Installed | None:
        """The installed item, or None. For an LLM without quant: the default quant, else any."""
        items = [i for i in self.installed(kind) if i.id == model_id]
        if quant:
            return next((i for i in items if (i.quant or "").upper() == quant.upper()), None)
        if not items:
            return None
        default = self.catalog.llms[model_id].default_quant if model_id in self.catalog.llms else None
        return next((i for i in items if i.quant == default), items[0])

    def require_llm(self, model: LlmModel, quant: Quant | None = None) -> Installed:
        """The installed file of a model, assembling an embedded one on first use."""
        found = self.find("llm", model.id, quant.name if quant else None)
        if found:
            return found
        for q in [quant] if quant else list(model.quants.values()):
            if q and q.embedded and q.embedded.assemble and package_dir(q.embedded.package):
                return self.assemble(model, q)
        spec = f"{model.id}:{quant.name}" if quant else model.id
        raise NotInstalledError(f"{spec} is not installed; get it with: edge-assistant models pull {spec}")

    def assemble(self, model: LlmModel, quant: Quant) -> Installed:
        """Join the chunks that a package ships into one verified GGUF in the store."""
        assert quant.embedded is not None
        target = self.llm_file(model.id, quant.file)
        with self.lock(f"{model.id}@{quant.name}"):
            found = self.find("llm", model.id, quant.name)
            if found:
                return found
            module = __import__(quant.embedded.package)
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.partial_dir / f"{model.id}@{quant.name}.assemble"
            tmp.unlink(missing_ok=True)
            module.assemble(tmp, overwrite=True)
            digest = sha256_file(tmp)
            if quant.sha256 and digest != quant.sha256:
                tmp.unlink(missing_ok=True)
                raise ModelFileError(f"the chunks of {quant.embedded.package} do not match the catalog's sha256")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            fsync_dir(target.parent)
            return self.record(
                Installed(
                    "llm",
                    model.id,
                    quant.name,
                    target,
                    target.stat().st_size,
                    "embedded",
                    sha256=digest,
                    repo=model.repo,
                    installed_at=now(),
                )
            )

    # -- maintenance ------------------------------------------------------------------------
    def remove(self, item: Installed) -> None:
        """Delete an installed item and its manifest."""
        if item.source == "embedded" and not self._manifest(item.kind, item.id, item.quant).exists():
            package = self._embedding_package(item)
            raise UsageError(
                f"{item.ref} is shipped by the Python package {package}; "
                f"remove it with: pip uninstall {package.replace('_', '-')}"
            )
        self.check_inside(item.path)
        if item.path.is_dir() and not item.path.is_symlink():
            shutil.rmtree(item.path)
        else:
            item.path.unlink(missing_ok=True)
        self._manifest(item.kind, item.id, item.quant).unlink(missing_ok=True)
        parent = item.path.parent
        while inside(self.root, parent) and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def _embedding_package(self, item: Installed) -> str:
        entry = self.catalog.get(item.id)
        embedded = entry.quant(item.quant).embedded if isinstance(entry, LlmModel) else entry.embedded
        return embedded.package if embedded else "?"

    def expected_sha256(self, item: Installed) -> str | None:
        """The sha256 a file should have: the catalog's, else the one recorded at install."""
        if item.kind == "llm" and item.id in self.catalog.llms and item.quant in self.catalog.llms[item.id].quants:
            return self.catalog.llms[item.id].quants[item.quant].sha256 or item.sha256
        return item.sha256

    def verify(self, item: Installed) -> tuple[str, str]:
        """Check an installed item: ('ok' | 'bad' | 'unchecked', detail)."""
        if not item.path.exists():
            return "bad", f"{item.path} is missing"
        if item.path.is_file():
            expected = self.expected_sha256(item)
            actual = sha256_file(item.path)
            if not expected:
                return "unchecked", f"no sha256 known to check against (sha256 {actual})"
            if actual != expected:
                return "bad", f"sha256 {actual[:12]}… differs from the expected {expected[:12]}…; pull it again"
            return "ok", f"sha256 {actual[:12]}… matches"
        if not item.files:
            return "unchecked", "no checksums recorded for this folder"
        problems = []
        for rel, digest in item.files.items():
            path = item.path / rel
            if not path.is_file():
                problems.append(f"{rel} is missing")
            elif sha256_file(path) != digest:
                problems.append(f"{rel} has changed")
        if problems:
            return "bad", "; ".join(problems[:3]) + ("; pull it again" if problems else "")
        return "ok", f"{len(item.files)} files match"
