"""`edge-assistant models ...`: list, pull, rm, info, verify, path, recommend."""

from __future__ import annotations

from typing import Any

import click

from ..catalog import AssetModel, HubFile, LlmModel, Quant, hub_file, parse_spec
from ..errors import UsageError
from ..gguf import read_gguf
from ..recommend import preferred_quant
from ..settings import HubSettings
from ..store import Installed, Store
from .common import App, emit_json, human_bytes, json_option, pass_app, status, table


@click.group()
def models() -> None:
    """The model catalog and the local store: list, pull, rm, info, verify, path, recommend."""


def _resolve(app: App, spec: str) -> tuple[LlmModel | AssetModel | HubFile, Quant | None]:
    """MODEL[:QUANT] or OWNER/REPO/FILE.gguf -> catalog entry (or hub file) and quant."""
    raw = hub_file(spec)
    if raw:
        return raw, None
    name, quant = parse_spec(spec)
    entry = app.store.catalog.get(name)
    if isinstance(entry, LlmModel):
        return entry, entry.quant(quant) if quant else None
    if quant:
        raise UsageError(f"{entry.id} is a {entry.kind} model and has no quantizations")
    return entry, None


def _installed_for(store: Store, entry: LlmModel | AssetModel | HubFile, quant: Quant | None) -> list[Installed]:
    kind = "llm" if isinstance(entry, (LlmModel, HubFile)) else entry.kind
    model_id = entry.repo if isinstance(entry, HubFile) else entry.id
    qname = entry.file if isinstance(entry, HubFile) else (quant.name if quant else None)
    return [i for i in store.installed(kind) if i.id == model_id and (qname is None or i.quant == qname)]


def _llm_row(model: LlmModel, installed: dict[tuple[str, str | None], Installed]) -> dict[str, Any]:
    quants = []
    for q in model.quants.values():
        item = installed.get((model.id, q.name))
        quants.append(
            {
                "quant": q.name,
                "file": q.file,
                "bytes": q.bytes,
                "sha256": q.sha256,
                "embedded": q.embedded.package if q.embedded else None,
                "installed": item is not None,
                "path": str(item.path) if item else None,
            }
        )
    return {
        "id": model.id,
        "kind": "llm",
        "name": model.name,
        "family": model.family,
        "params_b": model.params_b,
        "context": model.context,
        "licence": model.licence,
        "gated": model.gated,
        "repo": model.repo,
        "revision": model.revision,
        "default_quant": model.default_quant,
        "tags": list(model.tags),
        "installed": any(q["installed"] for q in quants),
        "quants": quants,
        "unverified": list(model.unverified),
    }


def _asset_row(asset: AssetModel, item: Installed | None) -> dict[str, Any]:
    return {
        "id": asset.id,
        "kind": asset.kind,
        "name": asset.name,
        "engine": asset.engine,
        "language": asset.language,
        "licence": asset.licence,
        "bytes": asset.bytes,
        "url": asset.url,
        "repo": asset.repo,
        "embedded": asset.embedded.package if asset.embedded else None,
        "installed": item is not None,
        "path": str(item.path) if item else None,
    }


@models.command("list")
@click.option("--installed", "only_installed", is_flag=True, help="Only what is installed here.")
@click.option("--kind", type=click.Choice(["llm", "stt", "tts"]), help="Only one kind of model.")
@json_option
@pass_app
def list_models(app: App, only_installed: bool, kind: str | None, as_json: bool) -> None:
    """Every catalog model with family, size, quantizations, licence, gating, and what is installed."""
    store = app.store
    items = store.installed()
    by_key = {(i.id, i.quant): i for i in items}
    rows: list[dict[str, Any]] = []
    if kind in (None, "llm"):
        rows += [_llm_row(m, by_key) for m in store.catalog.llms.values()]
        raw = [i for i in items if i.kind == "llm" and i.id not in store.catalog.llms]
        rows += [
            {
                "id": i.id,
                "kind": "llm",
                "name": i.quant,
                "installed": True,
                "path": str(i.path),
                "bytes": i.bytes,
                "quants": [{"quant": i.quant, "installed": True, "bytes": i.bytes}],
            }
            for i in raw
        ]
    if kind in (None, "stt", "tts"):
        rows += [
            _asset_row(a, by_key.get((a.id, None))) for a in store.catalog.assets.values() if kind in (None, a.kind)
        ]
    if only_installed:
        rows = [r for r in rows if r["installed"]]
    if as_json:
        emit_json(rows)
        return
    llm_rows = [r for r in rows if r["kind"] == "llm"]
    if llm_rows:
        click.echo(
            table(
                [_llm_cells(r) for r in llm_rows],
                ["MODEL", "FAMILY", "PARAMS", "QUANTIZATIONS (* installed)", "LICENCE", "GATED"],
            )
        )
    asset_rows = [r for r in rows if r["kind"] != "llm"]
    if asset_rows:
        if llm_rows:
            click.echo()
        click.echo(
            table(
                [
                    [
                        r["id"],
                        r["kind"],
                        r["engine"],
                        r["language"],
                        human_bytes(r["bytes"]),
                        "yes" if r["installed"] else "",
                        r["licence"],
                    ]
                    for r in asset_rows
                ],
                ["SPEECH MODEL / VOICE", "KIND", "ENGINE", "LANG", "SIZE", "INSTALLED", "LICENCE"],
            )
        )
    if not rows:
        status("nothing installed yet; see: edge-assistant models recommend")


def _llm_cells(r: dict[str, Any]) -> list[str]:
    quants = " ".join(
        f"{q['quant']}{'*' if q['installed'] else ''}:{human_bytes(q.get('bytes'))}".replace(" ", "")
        for q in r["quants"]
    )
    params = f"{r['params_b']:g}B" if r.get("params_b") else "?"
    return [r["id"], r.get("family", "?"), params, quants, r.get("licence", "?"), "yes" if r.get("gated") else "no"]


@models.command()
@click.argument("spec", metavar="MODEL[:QUANT]", required=False)
@click.option("--revision", help="Branch, tag or commit to download from.")
@click.option("--token", envvar="HF_TOKEN", help="Hub access token for gated repos [env: HF_TOKEN].")
@click.option("--offline", is_flag=True, help="Never use the network (as HF_HUB_OFFLINE=1).")
@click.option("--embedded", is_flag=True, help="Set up every model that installed Python packages ship.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@pass_app
def pull(
    app: App, spec: str | None, revision: str | None, token: str | None, offline: bool, embedded: bool, quiet: bool
) -> None:
    """Download a model into the store: MODEL[:QUANT] from the catalog, or OWNER/REPO/FILE.gguf.

    Without QUANT, the quantization that suits this machine (Q4_K_M; Q4_0 on ARM). Downloads
    resume after a cut, are checked against the catalog's or the hub's sha256, and never leave a
    partial file under the final name.
    """
    from ..download import PullOptions, pull_asset, pull_llm
    from .progress import ByteBar

    opts = PullOptions(
        hub=HubSettings.from_env(token=token, offline=offline),
        revision=revision,
        progress=None if quiet else ByteBar,
        notify=status,
    )
    if embedded:
        for item in _pull_embedded(app):
            click.echo(f"{item.ref}\t{item.path}")
        return
    if not spec:
        raise UsageError("name a model to pull (see: edge-assistant models list), or pass --embedded")
    entry, quant = _resolve(app, spec)
    if isinstance(entry, AssetModel):
        item = pull_asset(app.store, entry, opts)
    else:
        if isinstance(entry, LlmModel) and quant is None:
            quant = preferred_quant(entry, app.machine) or entry.quant()
        item = pull_llm(app.store, entry, quant, opts, ram_bytes=app.machine.total_ram)
    click.echo(str(item.path))


def _pull_embedded(app: App) -> list[Installed]:
    """Register (and for chunked packages, assemble) every embedded model whose package is present."""
    store, done = app.store, []
    for model in store.catalog.llms.values():
        for quant in model.quants.values():
            if quant.embedded and (quant.embedded.assemble or store.embedded_path(quant.embedded)):
                try:
                    done.append(store.require_llm(model, quant))
                except UsageError:
                    continue
    done += [i for i in store.installed() if i.source == "embedded" and i.kind != "llm"]
    if not done:
        status("no embedded models found: install the packages with 'make install'")
    return done


@models.command()
@click.argument("spec", metavar="MODEL[:QUANT]")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (removing more than one file).")
@pass_app
def rm(app: App, spec: str, yes: bool) -> None:
    """Remove an installed model (all its quantizations unless one is named)."""
    entry, quant = _resolve(app, spec)
    items = _installed_for(app.store, entry, quant)
    if not items:
        raise UsageError(f"{spec} is not installed")
    if len(items) > 1 and not yes:
        names = ", ".join(i.ref for i in items)
        if not click.confirm(f"remove {names}?", err=True):
            raise UsageError("nothing removed")
    for item in items:
        app.store.remove(item)
        status(f"removed {item.ref} ({human_bytes(item.bytes)})")


@models.command()
@click.argument("spec", metavar="MODEL[:QUANT]")
@json_option
@pass_app
def info(app: App, spec: str, as_json: bool) -> None:
    """Catalog facts of a model and, for installed files, what their GGUF header says."""
    entry, quant = _resolve(app, spec)
    if isinstance(entry, LlmModel):
        data = _llm_row(entry, {(i.id, i.quant): i for i in app.store.installed("llm")})
        if quant:
            data["quants"] = [q for q in data["quants"] if q["quant"] == quant.name]
    elif isinstance(entry, AssetModel):
        item = app.store.find(entry.kind, entry.id)
        data = {**_asset_row(entry, item), "files": list(entry.files), "note": entry.note}
    else:
        data = {
            "id": entry.id,
            "kind": "llm",
            "repo": entry.repo,
            "file": entry.file,
            "quants": [
                {"quant": i.quant, "installed": True, "path": str(i.path), "bytes": i.bytes}
                for i in _installed_for(app.store, entry, None)
            ],
        }
    for q in data.get("quants", []):
        if q.get("path"):
            gguf = read_gguf(q["path"])
            q["gguf"] = {
                "architecture": gguf.architecture,
                "name": gguf.name,
                "context_length": gguf.context_length,
                "chat_template": gguf.chat_template is not None,
                "tensors": gguf.tensor_count,
                "truncated": gguf.truncated,
            }
    if as_json:
        emit_json(data)
        return
    _print_info(data)


def _print_info(data: dict[str, Any]) -> None:
    skip = {"quants", "kind"}
    for key, value in data.items():
        if key not in skip and value not in (None, [], ""):
            click.echo(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    for q in data.get("quants", []):
        mark = "installed" if q.get("installed") else "not installed"
        click.echo(f"- {q['quant']}: {q.get('file', '')} {human_bytes(q.get('bytes'))} ({mark})")
        if q.get("path"):
            click.echo(f"    path: {q['path']}")
        if q.get("gguf"):
            g = q["gguf"]
            click.echo(
                f"    gguf: architecture {g['architecture']}, context {g['context_length']}, chat template "
                f"{'present' if g['chat_template'] else 'absent'}{', TRUNCATED' if g['truncated'] else ''}"
            )


@models.command()
@click.argument("spec", metavar="[MODEL[:QUANT]]", required=False)
@json_option
@pass_app
def verify(app: App, spec: str | None, as_json: bool) -> None:
    """Check the sha256 of installed files against the catalog and their manifests."""
    items = app.store.installed()
    if spec:
        entry, quant = _resolve(app, spec)
        items = _installed_for(app.store, entry, quant)
        if not items:
            raise UsageError(f"{spec} is not installed")
    results = []
    for item in items:
        state, detail = app.store.verify(item)
        results.append(
            {"model": item.ref, "kind": item.kind, "path": str(item.path), "status": state, "detail": detail}
        )
        if not as_json:
            click.echo(f"{state.upper():9} {item.ref}: {detail}")
    if as_json:
        emit_json(results)
    bad = [r for r in results if r["status"] == "bad"]
    if bad:
        raise UsageError(f"{len(bad)} of {len(results)} installed models failed verification") from None


@models.command()
@click.argument("spec", metavar="[MODEL[:QUANT]]", required=False)
@pass_app
def path(app: App, spec: str | None) -> None:
    """Print the models dir, or the path of an installed model."""
    if not spec:
        click.echo(str(app.store.root))
        return
    entry, quant = _resolve(app, spec)
    if isinstance(entry, LlmModel):
        click.echo(str(app.store.require_llm(entry, quant).path))
        return
    items = _installed_for(app.store, entry, quant)
    if not items:
        raise UsageError(f"{spec} is not installed; get it with: edge-assistant models pull {spec}")
    click.echo(str(items[0].path))


@models.command("recommend")
@click.option(
    "--device",
    metavar="BOARD",
    help="Predict for a board instead of this machine (pi4-2gb, pi4-4gb, pi4-8gb, pi5-4gb, pi5-8gb, pi5-16gb).",
)
@click.option("--all", "show_all", is_flag=True, help="Show the prediction for every model and quantization.")
@json_option
@pass_app
def recommend_cmd(app: App, device: str | None, show_all: bool, as_json: bool) -> None:
    """The model and quantization that fit this machine (or a board), the threads to use, and why."""
    from .recommend import recommend_here_or_on, render_recommendation

    rec, data = recommend_here_or_on(app, device)
    if as_json:
        emit_json(data)
        return
    click.echo(render_recommendation(rec, data, show_all or device is not None))
