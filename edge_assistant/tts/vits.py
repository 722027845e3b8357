"""A Piper voice's ONNX graph (VITS) split at its decoder's input, so a sentence's audio is decoded in pieces.

A VITS graph runs text encoder, duration predictor, expansion and flow to a latent (channels x frames), then a
HiFi-GAN decoder from the latent to audio. The decoder does most of the work and is convolutional: each output
sample depends on a bounded number of latent frames either side (its receptive field), read from the graph.
So the latent of a whole sentence is made at once and decoded piece by piece, each piece with that many frames
of context either side: the joined pieces are the whole-sentence audio, and the first is heard much sooner.

The split point is found from the graph's structure, not from node names: the decoder's first transposed
convolution (its first upsampling), back through elementwise steps to the convolution before it (`conv_pre`),
whose input is the latent. A graph that does not have that shape, or whose decoder mixes time in any other way,
is not split (`split_voice` says why) and the voice runs whole. On the serve bench (Piper en_US joe medium, two
cores) the first audio chunk of a short reply came 78 ms after the text instead of 154 ms.

The halves are written once per voice file into the models dir's cache by a child process (`load_split`) and
loaded from there, as the whole voice was: no more memory than the unsplit voice in the process that speaks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

TIMED_INPUTS = frozenset({"input", "input_lengths"})
"""Piper's graph inputs that carry the sentence's length (phoneme ids and their count); a decoder that reads them
cannot be run on a piece of the latent. Its other inputs (`scales`, `sid`) are the same for every piece."""
_PASS = frozenset({"LeakyRelu", "Relu", "Tanh", "Sigmoid", "Abs", "Identity", "Add", "Sub", "Mul", "Div"})
"""Steps that work sample by sample (a sum of branches, an activation, a scale)."""
_SHAPE = frozenset({"Unsqueeze", "Squeeze"})
"""Steps allowed at the decoder's end only on axes other than time (checked by the output's length)."""
FIRST_SECONDS = 0.35
"""Audio in the first piece: small, so it is ready soon, and long enough to be played while the next is made."""
SERVED_FIRST_SECONDS = 0.2
"""The first piece for a client over the network (`serve`): joe medium, 1 thread, first piece of a short reply
~80 ms against ~105 at 0.35 s, each next piece still ready 130 ms or more before the audio so far ran out. Not
for the assistant's own speaker: with it, the echo canceller let the start of an answer through as a barge-in
in 3 of 13 runs of the barge-in test (0 of 4 at 0.35 s)."""
MAX_FRAMES = 256
"""Latent frames in a piece at most (pieces double in size from the first up to this)."""
ENCODER, DECODER, SPLIT = "encoder.onnx", "decoder.onnx", "split.json"


@dataclass(frozen=True)
class SplitVoice:
    """The two halves of a voice graph, as ONNX files."""

    encoder: Path
    """The voice's inputs -> the latent."""
    decoder: Path
    """The latent (and the voice's inputs that do not depend on time, e.g. the speaker) -> audio."""
    latent: str
    """Name of the latent tensor (the encoder's output and the decoder's first input)."""
    shared: tuple[str, ...]
    """The voice's inputs the decoder also takes."""
    context: int
    """Latent frames of context either side of a piece that make its audio equal the whole sentence's."""
    hop: int
    """Audio samples per latent frame."""


def load_split(model_path: str | Path, cache: Path) -> SplitVoice | None:
    """The voice at `model_path` split at its decoder's input, or None (the reason logged at debug level) when its
    graph has no such split. The halves are made once, into a folder of `cache` (per voice file), in a child
    process: reading a whole graph in Python takes more memory than the voice itself, and a server's peak would
    carry it."""
    source = Path(model_path).resolve()
    folder = cache / f"{source.name.removesuffix('.onnx')}-{hashlib.sha1(str(source).encode()).hexdigest()[:10]}"
    found = _read(folder, source)
    if found is None:
        command = [sys.executable, "-m", __name__, str(source), str(folder)]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("%s: not split (%s); the voice runs whole", source, exc)
            return None
        found = _read(folder, source)
        if found is None:
            log.debug("%s: not split (%s); the voice runs whole", source, (done.stderr or "").strip()[-500:])
            return None
    if isinstance(found, str):
        log.debug("%s: not split (%s); the voice runs whole", source, found)
        return None
    return found


def _stamp(source: Path) -> dict[str, Any]:
    stat = source.stat()
    return {"path": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read(folder: Path, source: Path) -> SplitVoice | str | None:
    """The split made for `source` as it is now, why it has none, or None when it was not made (or is stale)."""
    try:
        made = json.loads((folder / SPLIT).read_text(encoding="utf-8"))
        if made.get("source") != _stamp(source):
            return None
        if made.get("split") is None:
            return str(made.get("reason", "no split"))
        split = made["split"]
        halves = SplitVoice(
            folder / ENCODER, folder / DECODER, str(split["latent"]), tuple(split["shared"]),
            int(split["context"]), int(split["hop"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return halves if halves.encoder.is_file() and halves.decoder.is_file() else None


def split_voice(model_path: str | Path, folder: Path) -> SplitVoice | str:
    """Split the voice at `model_path` at its decoder's input into `folder` (with what was found, or why it cannot
    be split, for `load_split`); the split, or why there is none. Needs the `onnx` package."""
    import onnx

    source = Path(model_path).resolve()
    model = onnx.load(str(source))
    found = _find(model.graph)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(found, str):
        _write(folder / SPLIT, json.dumps({"source": _stamp(source), "split": None, "reason": found}).encode())
        return found
    latent, shared, context, hop = found
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {i.name: i for i in graph.input}
    latent_info = onnx.helper.make_tensor_value_info(latent, onnx.TensorProto.FLOAT, None)
    encoder = _part(model, _upstream(graph.node, producer, latent, stop=""), list(graph.input), [latent_info])
    _write(folder / ENCODER, encoder)
    del encoder
    decoder_nodes = _upstream(graph.node, producer, graph.output[0].name, stop=latent)
    _write(
        folder / DECODER, _part(model, decoder_nodes, [latent_info, *(inputs[n] for n in shared)], [graph.output[0]])
    )
    split = {"latent": latent, "shared": list(shared), "context": context, "hop": hop}
    _write(folder / SPLIT, json.dumps({"source": _stamp(source), "split": split}).encode())
    log.debug("%s: split at %s, %d frames of context, %d samples a frame", source, latent, context, hop)
    return SplitVoice(folder / ENCODER, folder / DECODER, latent, shared, context, hop)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _part(model: Any, nodes: list[Any], inputs: list[Any], outputs: list[Any]) -> bytes:
    """A serialized model of `nodes` of `model`, with the weights they use (no shape inference: a voice's own
    graph is already valid, and inferring its shapes takes longer than loading it)."""
    import onnx

    used = {name for node in nodes for name in node.input}
    weights = [init for init in model.graph.initializer if init.name in used]
    graph = onnx.helper.make_graph(nodes, model.graph.name, inputs, outputs, weights)
    part = onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    return bytes(part.SerializeToString())


def _find(graph: Any) -> tuple[str, tuple[str, ...], int, int] | str:
    """(latent, shared inputs, context frames, hop) of a VITS graph, or why it cannot be split."""
    producer = {out: node for node in graph.node for out in node.output}
    upsample = next((node for node in graph.node if node.op_type == "ConvTranspose"), None)
    if upsample is None:
        return "no transposed convolution (no HiFi-GAN decoder)"
    node = upsample
    while True:
        before = producer.get(node.input[0])
        if before is None or before.op_type not in _PASS | {"Conv"}:
            return "no convolution before the decoder's first upsampling"
        if before.op_type == "Conv":
            latent = str(before.input[0])
            break
        node = before
    if not graph.output:
        return "no output"
    output = str(graph.output[0].name)
    decoder = _upstream(graph.node, producer, output, stop=latent)
    inputs = {i.name for i in graph.input}
    needed = {name for node in decoder for name in node.input if name in inputs}
    if needed & TIMED_INPUTS:
        return f"the decoder reads {sorted(needed & TIMED_INPUTS)}"
    field = _receptive_field(decoder, latent, {init.name: init for init in graph.initializer})
    if isinstance(field, str):
        return field
    radius, hop = field
    return latent, tuple(sorted(needed)), math.ceil(radius) + 1, hop


def _upstream(nodes: Any, producer: dict[str, Any], output: str, stop: str) -> list[Any]:
    """The nodes `output` is computed by, back to `stop` (exclusive), in graph (topological) order."""
    seen: set[int] = set()
    todo = [output]
    while todo:
        name = todo.pop()
        node = producer.get(name)
        if name == stop or node is None or id(node) in seen:
            continue
        seen.add(id(node))
        todo.extend(node.input)
    return [node for node in nodes if id(node) in seen]


def _attr(node: Any, name: str, default: list[int]) -> list[int]:
    for attribute in node.attribute:
        if attribute.name == name:
            return list(attribute.ints)
    return default


def _receptive_field(nodes: list[Any], latent: str, weights: dict[str, Any]) -> tuple[float, int] | str:
    """(how many latent frames either side an output sample depends on, samples per latent frame) of the
    decoder `nodes`, or why they are not a decoder that can run on pieces."""
    radius: dict[str, float] = {latent: 0.0}
    scale: dict[str, int] = {latent: 1}  # positions of a tensor per latent frame
    last = ""
    for node in nodes:
        timed = [name for name in node.input if name in radius]
        if not timed:
            continue  # depends on no latent frame (a speaker embedding, a constant)
        r, s = max(radius[name] for name in timed), scale[timed[0]]
        if any(scale[name] != s for name in timed):
            return f"{node.op_type} joins tensors of different rates"
        if node.op_type == "Conv":
            if len(timed) != 1 or node.input[0] != timed[0] or _attr(node, "strides", [1]) != [1]:
                return "a strided convolution, or one over a latent-dependent weight"
            kernel = _attr(node, "kernel_shape", [0])
            if len(kernel) != 1 or not kernel[0]:
                kernel = [int(weights[node.input[1]].dims[-1])] if node.input[1] in weights else []
            if len(kernel) != 1:
                return "a convolution of unknown kernel"
            r += (kernel[0] - 1) * _attr(node, "dilations", [1])[0] / 2 / s
        elif node.op_type == "ConvTranspose":
            stride, width = _attr(node, "strides", [1])[0], _attr(node, "kernel_shape", [0])[0]
            if len(timed) != 1 or node.input[0] != timed[0] or not width:
                return "an upsampling of unknown shape"
            r += math.ceil(width / stride) / s
            s *= stride
        elif node.op_type not in _PASS | _SHAPE:
            return f"a decoder step neither a convolution nor sample by sample: {node.op_type}"
        for name in node.output:
            radius[name], scale[name] = r, s
        last = node.output[0]
    if not last:
        return "the output does not depend on the latent"
    return radius[last], scale[last]


def pieces(frames: int, first: int, context: int) -> Iterator[tuple[int, int, int, int]]:
    """(start, end) of each piece of a latent of `frames` frames and the (lo, hi) frames decoded for it:
    the first piece `first` frames long, each next one twice the last (at most MAX_FRAMES), with `context`
    frames either side where the latent has them."""
    start, size = 0, max(1, first)
    while start < frames:
        end = min(frames, start + size)
        if frames - end < size // 2:
            end = frames  # no short last piece: it costs its context for little audio
        yield start, end, max(0, start - context), min(frames, end + context)
        start, size = end, min(MAX_FRAMES, 2 * size)


def decode(
    session: Any,
    split: SplitVoice,
    latent: npt.NDArray[np.float32],
    shared: dict[str, Any],
    rate: int,
    first_seconds: float = FIRST_SECONDS,
) -> Iterator[npt.NDArray[np.float32]]:
    """The audio of `latent` (1 x channels x frames) piece by piece, each as soon as it is decoded."""
    frames = int(latent.shape[-1])
    first = max(1, round(first_seconds * rate / split.hop))
    for start, end, lo, hi in pieces(frames, first, split.context):
        audio = session.run(None, {split.latent: latent[..., lo:hi], **shared})[0].reshape(-1)
        if len(audio) != (hi - lo) * split.hop:
            raise ValueError(f"the decoder gave {len(audio)} samples for {hi - lo} frames")
        yield audio[(start - lo) * split.hop : (end - lo) * split.hop]


def main(argv: list[str]) -> int:
    """`python -m edge_assistant.tts.vits MODEL FOLDER`: the child process of `load_split`."""
    if len(argv) != 2:
        print("usage: python -m edge_assistant.tts.vits MODEL.onnx FOLDER", file=sys.stderr)
        return 2
    try:
        split_voice(argv[0], Path(argv[1]))
    except ImportError:
        print("the onnx package is not installed", file=sys.stderr)
        return 1
    except Exception as exc:  # an unreadable graph: the voice runs whole (and says why when it is opened)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
