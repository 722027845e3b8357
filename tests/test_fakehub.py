"""Tests of the fake hub, driven by the real huggingface_hub client (no mocking)."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get

from tests.fakehub import FakeHub

REPO = "acme/tiny-model"
DATA = bytes(range(256)) * 400  # 102400 bytes
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep this machine's HF token, cache and offline setting out of the tests."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as fake:
        yield fake


def _url(hub: FakeHub, filename: str = "model.bin", repo: str = REPO) -> str:
    return hf_hub_url(repo, filename, endpoint=hub.url)


def test_lfs_metadata(hub: FakeHub) -> None:
    commit = hub.add_file(REPO, "model.bin", DATA)
    meta = get_hf_file_metadata(_url(hub), token=False)
    assert meta.etag == SHA
    assert meta.size == len(DATA)
    assert meta.commit_hash == commit and len(commit) == 40
    assert meta.location == f"{hub.cdn_url}/cdn/{SHA}"
    assert meta.xet_file_data is None
    # The redirect leaves the hub's origin, so the client stops there and never HEADs the CDN.
    assert [r["method"] for r in hub.requests] == ["HEAD"]
    # The commit sha is a valid revision too.
    assert get_hf_file_metadata(hf_hub_url(REPO, "model.bin", revision=commit, endpoint=hub.url)).etag == SHA


def test_non_lfs_metadata(hub: FakeHub) -> None:
    commit = hub.add_file(REPO, "config.json", b'{"a": 1}', lfs=False)
    meta = get_hf_file_metadata(_url(hub, "config.json"), token=False)
    assert meta.etag == hashlib.sha1(b'blob 8\0{"a": 1}').hexdigest()
    assert meta.size == 8
    assert meta.commit_hash == commit
    assert meta.location == _url(hub, "config.json")


@pytest.mark.parametrize("lfs", [True, False])
def test_hf_hub_download(hub: FakeHub, tmp_path: Path, lfs: bool) -> None:
    hub.add_file(REPO, "sub/model.bin", DATA, lfs=lfs)
    path = hf_hub_download(
        REPO,
        "sub/model.bin",
        local_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        endpoint=hub.url,
        token=False,
    )
    assert Path(path).read_bytes() == DATA
    assert Path(path) == tmp_path / "out" / "sub" / "model.bin"


def test_http_get_resume(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    location = get_hf_file_metadata(_url(hub), token=False).location
    part = tmp_path / "part"
    part.write_bytes(DATA[:1000])
    with part.open("ab") as f:
        http_get(location, f, resume_size=1000, expected_size=len(DATA))
    assert part.read_bytes() == DATA
    assert hub.ranges() == ["bytes=1000-"]


def test_cut_after_is_resumed_by_http_get(hub: FakeHub) -> None:
    # http_get reads the body in DOWNLOAD_CHUNK_SIZE (10 MiB) pieces and only writes (and resumes from) whole
    # pieces, so a resume is only visible once more than 10 MiB arrived before the cut.
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    big = DATA * (chunk // len(DATA) + 2)
    hub.add_file(REPO, "big.bin", big)
    hub.cut_after(chunk + 5000)
    buf = io.BytesIO()
    http_get(get_hf_file_metadata(_url(hub, "big.bin"), token=False).location, buf)
    assert buf.getvalue() == big
    assert hub.ranges() == [f"bytes={chunk}-"]


def test_cut_before_first_chunk_restarts_from_zero(hub: FakeHub) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    hub.cut_after(30_000, times=2)  # each retry sleeps 1 s
    buf = io.BytesIO()
    http_get(get_hf_file_metadata(_url(hub), token=False).location, buf)
    assert buf.getvalue() == DATA
    # Nothing was kept from the cut responses, so no Range was sent.
    assert hub.ranges() == []
    assert sum(r["path"].startswith("/cdn/") for r in hub.requests) == 3


def test_blob_with_range_and_cut(hub: FakeHub) -> None:
    url = hub.add_blob("models/vosk small.zip", DATA)
    assert url == f"{hub.url}/models/vosk%20small.zip"
    head = httpx2.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(DATA))
    part = httpx2.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == DATA[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    assert httpx2.get(url, headers={"Range": f"bytes={len(DATA)}-"}).status_code == 416
    hub.cut_after(5)
    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.get(url)
    assert httpx2.get(url).content == DATA  # only the next response was cut


def test_gated(hub: FakeHub) -> None:
    hub.add_file(REPO, "model.bin", DATA, gated=True)
    with pytest.raises(GatedRepoError) as anonymous:
        get_hf_file_metadata(_url(hub), token=False)
    assert anonymous.value.response.status_code == 401
    assert "You must have access to it and be authenticated" in str(anonymous.value)
    with pytest.raises(GatedRepoError) as refused:
        get_hf_file_metadata(_url(hub), token="hf_other")
    assert refused.value.response.status_code == 403
    assert "not in the authorized list" in str(refused.value)
    assert get_hf_file_metadata(_url(hub), token="hf_valid").etag == SHA
    assert hub.requests[-1]["headers"]["authorization"] == "Bearer hf_valid"


def test_not_found_errors(hub: FakeHub) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    with pytest.raises(RepositoryNotFoundError) as no_repo:
        get_hf_file_metadata(_url(hub, repo="acme/missing"), token=False)
    assert no_repo.value.response.status_code == 401
    with pytest.raises(RemoteEntryNotFoundError) as no_file:
        get_hf_file_metadata(_url(hub, "missing.bin"), token=False)
    assert no_file.value.response.status_code == 404
    with pytest.raises(RevisionNotFoundError):
        get_hf_file_metadata(hf_hub_url(REPO, "model.bin", revision="v9", endpoint=hub.url), token=False)


def test_corrupt_and_advertised_sha(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    hub.corrupt(REPO, "model.bin")
    meta = get_hf_file_metadata(_url(hub), token=False)
    assert meta.etag == SHA
    buf = io.BytesIO()
    http_get(meta.location, buf)
    got = buf.getvalue()
    assert len(got) == len(DATA) and hashlib.sha256(got).hexdigest() != SHA

    hub.add_file(REPO, "other.bin", b"payload", advertised_sha256="0" * 64)
    assert get_hf_file_metadata(_url(hub, "other.bin"), token=False).etag == "0" * 64
    path = hf_hub_download(REPO, "other.bin", local_dir=tmp_path, endpoint=hub.url, token=False)
    # A plain-HTTP hf_hub_download does not verify the sha256.
    assert Path(path).read_bytes() == b"payload"


def test_stall_then_release(hub: FakeHub) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    location = get_hf_file_metadata(_url(hub), token=False).location
    release = hub.stall_after(20_000)
    errors: list[Exception] = []
    buf = io.BytesIO()

    def download() -> None:
        try:
            # No internal resume: surface the dropped connection.
            http_get(location, buf, _nb_retries=0)
        except Exception as e:  # collected for the assertion below
            errors.append(e)

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    assert hub.wait_for_stall(5)
    thread.join(0.3)
    assert thread.is_alive()  # blocked mid-download
    release.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], httpx2.RemoteProtocolError)
    assert "received 20000 bytes, expected 102400" in str(errors[0])

    # Once released, the stall is disarmed.
    fresh = io.BytesIO()
    http_get(location, fresh)
    assert fresh.getvalue() == DATA


def test_stop_releases_stalled_response() -> None:
    hub = FakeHub()
    with hub:
        hub.add_file(REPO, "model.bin", DATA)
        location = get_hf_file_metadata(_url(hub), token=False).location
        hub.stall_after(1000)
        errors: list[Exception] = []

        def download() -> None:
            try:
                http_get(location, io.BytesIO(), _nb_retries=0)
            except Exception as e:
                errors.append(e)

        thread = threading.Thread(target=download, daemon=True)
        thread.start()
        assert hub.wait_for_stall(5)
    thread.join(5)
    assert not thread.is_alive() and errors


def test_throttle(hub: FakeHub) -> None:
    url = hub.add_blob("x.bin", b"x" * 20_000)
    hub.throttle(100_000)
    response = httpx2.get(url)
    assert response.content == b"x" * 20_000
    assert response.elapsed.total_seconds() >= 0.15
    hub.throttle(None)


def test_model_info(hub: FakeHub) -> None:
    commit = hub.add_file(REPO, "model.bin", DATA)
    hub.add_file(REPO, "config.json", b"{}", lfs=False)
    info = HfApi(endpoint=hub.url, token=False).model_info(REPO, files_metadata=True)
    assert info.id == REPO and info.sha == commit and info.gated is False
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert siblings["model.bin"].size == len(DATA)
    assert siblings["model.bin"].lfs is not None and siblings["model.bin"].lfs.sha256 == SHA
    assert siblings["config.json"].lfs is None and siblings["config.json"].size == 2
    by_rev = HfApi(endpoint=hub.url, token=False).model_info(REPO, revision=commit)
    assert by_rev.sha == commit and by_rev.siblings is not None and by_rev.siblings[0].size is None
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info("acme/missing")
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info(REPO, revision="nope")


def test_tree_and_snapshot_download(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_file(REPO, "model.bin", DATA)
    hub.add_file(REPO, "sub/dir/config.json", b"{}", lfs=False)
    api = HfApi(endpoint=hub.url, token=False)
    top = {f.path: type(f).__name__ for f in api.list_repo_tree(REPO)}
    assert top == {"sub": "RepoFolder", "model.bin": "RepoFile"}
    every = {f.path for f in api.list_repo_tree(REPO, recursive=True)}
    assert every == {"sub", "sub/dir", "sub/dir/config.json", "model.bin"}
    out = snapshot_download(
        REPO,
        local_dir=tmp_path / "snap",
        cache_dir=tmp_path / "cache",
        endpoint=hub.url,
        token=False,
    )
    assert (Path(out) / "model.bin").read_bytes() == DATA
    assert (Path(out) / "sub" / "dir" / "config.json").read_bytes() == b"{}"


def test_gated_model_info_is_public(hub: FakeHub) -> None:
    hub.add_file(REPO, "model.bin", DATA, gated=True)
    assert HfApi(endpoint=hub.url, token=False).model_info(REPO).gated == "auto"


def test_unknown_path_is_plain_404(hub: FakeHub) -> None:
    with pytest.raises(HfHubHTTPError):
        get_hf_file_metadata(f"{hub.url}/nothing/here", token=False)
