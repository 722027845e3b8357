"""The local backend: llama-cpp-python on a GGUF file, offline."""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from ..catalog import Sampling
from ..errors import ContextOverflowError, ModelFileError, NotInstalledError
from ..gguf import check_gguf
from ..hardware import detect
from ..settings import LlmSettings
from .formats import ChatFormat, choose_format
from .options import GenerationOptions, Message, Reply, Timings
from .sampling import from_gguf, merge, resolve

log = logging.getLogger(__name__)
_quiet_callback: Any = None


def quiet_llama_log(verbose: bool) -> None:
    """Silence llama.cpp's own log unless verbose."""
    global _quiet_callback
    import llama_cpp
    from llama_cpp import _logger

    if verbose:
        _logger.set_verbose(True)
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        return
    if _quiet_callback is None:
        _quiet_callback = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(_quiet_callback, ctypes.c_void_p(0))


def read_into_memory(path: Path, available: int | None = None) -> bool:
    """Whether to read the weights into memory rather than map the file.

    llama.cpp's CPU backend repacks the common quantizations (Q4_0, Q4_K, IQ4_NL) into its own layout at load;
    with the file mapped, the mapped pages it read stay resident beside the repacked copy (a 1B Q4_K_M model
    held 1.43 GiB mapped against 0.98 GiB read). Reading is never larger. Mapping is kept only for a file that
    would not fit in the memory available, where the kernel can page it in and out.
    """
    if available is None:
        available = detect().available_ram
    return path.stat().st_size < available * 0.8


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LlamaCppBackend:
    """A GGUF model run by llama.cpp in this process. Construct cheaply; `open()` loads."""

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        family: str | None = None,
        threads: int = 2,
        n_ctx: int | None = None,
        ctx_cap: int = LlmSettings.ctx_cap,
        n_batch: int = 512,
        flash_attn: bool = True,
        sampling: Sampling | None = None,
        verbose: bool = False,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.family = family
        self.threads = threads
        self.requested_ctx = n_ctx
        self.ctx_cap = ctx_cap
        self.n_batch = n_batch
        self.flash_attn = flash_attn
        """Flash attention: what llama.cpp itself picks on CPU ('auto'); llama-cpp-python defaults it off."""
        self.verbose = verbose
        self.catalog_sampling = sampling
        """The publisher's sampling from the catalog; the GGUF's own keys win over it."""
        self.sampling = merge(sampling)
        """Sampling defaults for options left unset (the GGUF's keys merged in at open)."""
        self.context_length = 0
        self.load_seconds = 0.0
        self.format: ChatFormat | None = None
        self._llm: Any = None
        self._prefix: list[int] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        if self._llm is not None:
            return
        if not self.path.exists():
            raise NotInstalledError(f"model file not found: {self.path}")
        info = check_gguf(self.path)
        trained = info.context_length or 2048
        n_ctx = self.requested_ctx or min(trained, self.ctx_cap)
        quiet_llama_log(self.verbose)
        from llama_cpp import Llama

        start = time.perf_counter()
        try:
            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                n_batch=min(self.n_batch, n_ctx),
                use_mmap=not read_into_memory(self.path),
                flash_attn=self.flash_attn,
                verbose=self.verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(f"llama.cpp cannot load {self.path.name}: {exc}") from None
        self.load_seconds = time.perf_counter() - start
        self.context_length = self._llm.n_ctx()
        eos = self._token_text(self._llm.token_eos())
        try:
            self.format = choose_format(info.chat_template, info.architecture, self.family, eos, self.path.name)
            self.sampling = merge(from_gguf(info.metadata), self.catalog_sampling)
        except BaseException:
            self.close()
            raise
        log.info(
            "loaded %s in %.2fs: n_ctx=%d, format %s",
            self.path.name,
            self.load_seconds,
            self.context_length,
            self.format.name,
        )

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def __enter__(self) -> LlamaCppBackend:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def llm(self) -> Any:
        if self._llm is None:
            raise RuntimeError("backend is not open")
        return self._llm

    # -- tokens -------------------------------------------------------------------------------
    def _token_text(self, token: int) -> str:
        try:
            return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", errors="ignore")
        except TypeError:
            return bytes(self.llm.detokenize([token])).decode("utf-8", errors="ignore")

    def render(self, messages: Sequence[Message]) -> str:
        assert self.format is not None
        return self.format.render(messages)

    def tokens(self, messages: Sequence[Message]) -> list[int]:
        """Prompt tokens: BOS as the model wants it, special tokens parsed."""
        return list(self.llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.tokens(messages))

    # -- generation ---------------------------------------------------------------------------
    def warm(self, prefix: Sequence[Message]) -> float:
        """Evaluate the fixed part of prompts that start with `prefix` (up to the next user turn's text); later
        prompts reuse its KV state. What the context already holds of it is kept: after a turn of a
        conversation only the end of the turn and the next one's header are new."""
        a = self.tokens([*prefix, Message("user", "a")])
        b = self.tokens([*prefix, Message("user", "b")])
        fixed = a[: common_prefix(a, b)]
        kept = common_prefix(self.evaluated(), fixed)
        if not fixed or kept == len(fixed):
            self._prefix = fixed
            return 0.0
        start = time.perf_counter()
        self.llm.n_tokens = kept  # eval drops the KV state past this point, then evaluates the rest
        self.llm.eval(fixed[kept:])
        self._prefix = fixed
        return time.perf_counter() - start

    def ends_here(self, messages: Sequence[Message]) -> float:
        """The probability of a closing mark (. ? !) or the end of the turn right after the last message's text:
        how finished the model reads it. Its prompt is evaluated up to there (a stream of the same messages then
        starts from it). SmolLM2 135M: at most 0.001 after "Remind me to buy", "What is the capital of" and 18
        other unfinished requests; at least 0.037 after 29 finished ones ("Tell me a joke", "who wrote Romeo
        and Juliet": 0.068)."""
        import numpy as np

        last = messages[-1]
        prompt = self.tokens(messages)
        k = common_prefix(prompt, self.tokens([*messages[:-1], Message(last.role, last.content + " zq")]))
        if k == 0 or k >= len(prompt):
            return 0.0
        self.llm.n_tokens = min(common_prefix(self.evaluated(), prompt[:k]), k - 1)
        self.llm.eval(prompt[self.llm.n_tokens : k])
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        ends = {prompt[k], *self._closing_marks()}
        return float(sum(probabilities[t] for t in ends))

    def _closing_marks(self) -> list[int]:
        return [t for mark in ("?", ".", "!") for t in self.llm.tokenize(mark.encode(), add_bos=False)[:1]]

    def evaluated(self) -> list[int]:
        """Tokens whose KV state the context holds now."""
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def reset(self) -> None:
        """Forget the evaluated context (the next prompt is evaluated from scratch)."""
        self.llm.reset()
        self._prefix = []

    def _prompt(self, messages: Sequence[Message]) -> tuple[list[int], int]:
        prompt = self.tokens(messages)
        room = self.context_length - len(prompt)
        if room < 1:
            raise ContextOverflowError(
                f"the prompt takes {len(prompt)} tokens; {self.name} holds {self.context_length}"
            )
        return prompt, room

    def _sampling(self, options: GenerationOptions, room: int) -> dict[str, Any]:
        assert self.format is not None
        chosen = resolve(options, self.sampling)
        return {
            "max_tokens": min(options.max_tokens, room),
            "temperature": chosen.temperature,
            "top_p": chosen.top_p,
            "top_k": chosen.top_k,
            "min_p": chosen.min_p,
            "repeat_penalty": chosen.repeat_penalty,
            "seed": chosen.seed,
            "stop": list(self.format.stop + options.stop),
        }

    def complete(self, messages: Sequence[Message], options: GenerationOptions) -> Reply:
        """The whole answer at once (no streaming)."""
        prompt, room = self._prompt(messages)
        start = time.perf_counter()
        out = self.llm.create_completion(prompt, stream=False, **self._sampling(options, room))
        total = time.perf_counter() - start
        choice, usage = out["choices"][0], out["usage"]
        return Reply(
            choice["text"],
            choice["finish_reason"] or "stop",
            Timings(prompt_tokens=len(prompt), completion_tokens=usage["completion_tokens"], ttft=total, total=total),
        )

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
    ) -> Generator[str, None, None]:
        prompt, room = self._prompt(messages)
        cached = common_prefix(self.evaluated(), prompt)
        start = time.perf_counter()
        first: float | None = None
        count = 0
        pieces: list[str] = []
        finish = "interrupted"
        stream = self.llm.create_completion(prompt, stream=True, **self._sampling(options, room))
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["text"]
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if not text:
                    continue
                if first is None:
                    first = time.perf_counter() - start
                count += 1
                pieces.append(text)
                reply.text = "".join(pieces)
                yield text
            if finish == "interrupted":
                finish = "stop"
        finally:
            stream.close()
            total = time.perf_counter() - start
            reply.text = "".join(pieces)
            reply.finish_reason = finish
            # the last sampled token is evaluated only when the next one is asked for
            generated = max(0, self.llm.n_tokens - len(prompt) + (1 if finish == "length" else 0))
            reply.timings = Timings(
                prompt_tokens=len(prompt),
                cached_tokens=cached,
                completion_tokens=generated or count,
                ttft=first if first is not None else total,
                total=total,
            )
