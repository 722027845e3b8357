"""A model's own chat template (Jinja, from its GGUF metadata), rendered in Jinja's immutable sandbox and bounded.

The template comes from a file anyone could have crafted. The sandbox keeps it away from Python's insides;
on top of it every render is capped in time (a watchdog stops a template that loops for ever) and in size
(operators, calls, filters and joins that would build text or lists beyond the cap are stopped before they
allocate, and the output is counted as it comes). Whatever goes wrong is one line naming the model.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ModelFileError, first_line
from ..settings import TemplateLimits

WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{8}")
"""A str.format field asking for a width or precision of eight digits or more."""
WIDE_PERCENT = re.compile(r"%[-+ #0]*\d{8}|%[-+ #0]*\d*\.\d{8}")
"""The same for printf-style formatting."""


class _Timeout(Exception):
    """Raised inside the rendering thread by the watchdog."""


class _TooBig(Exception):
    """A value or the output grew past the size cap."""


_raise_in = ctypes.pythonapi.PyThreadState_SetAsyncExc
_raise_in.argtypes = [ctypes.c_ulong, ctypes.py_object]
_clear_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


class _Watchdog:
    """One thread that stops renders running past their deadline, by raising _Timeout in the rendering thread
    (a pure-Python loop stops at its next bytecode). Cheaper than a timer thread per render."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[int, tuple[float, int]] = {}
        """key -> (deadline, thread id) of the renders running."""
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None

    @contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Raise _Timeout in this thread if the block runs longer than `seconds`."""
        with self._cond:
            key, self._next = self._next, self._next + 1
            self._jobs[key] = (time.monotonic() + seconds, threading.get_ident())
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="template-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._jobs.pop(key, None)
                if key in self._fired:  # a stop that came too late to be raised is withdrawn
                    self._fired.discard(key)
                    _clear_in(threading.get_ident(), None)

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (deadline, thread) in list(self._jobs.items()):
                    if deadline <= now:
                        del self._jobs[key]
                        self._fired.add(key)
                        _raise_in(thread, _Timeout)
                soonest = min((d for d, _ in self._jobs.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


_watchdog = _Watchdog()


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 0


def _environment(limits: TemplateLimits) -> Any:
    """An immutable sandbox, set up as Hugging Face chat templates expect, whose every operation is bounded."""
    import jinja2
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    cap = limits.max_chars

    def check(value: Any) -> Any:
        if _size(value) > cap:
            raise _TooBig
        return value

    def check_args(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        for arg in (*args, *kwargs.values()):
            if (isinstance(arg, int) and abs(arg) > cap) or _size(arg) > cap:
                raise _TooBig

    def bounded(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)  # keeps Jinja's pass_context/pass_environment marks
        def call(*args: Any, **kwargs: Any) -> Any:
            check_args(args[1:], kwargs)  # the first is the value filtered (or the context)
            return check(func(*args, **kwargs))

        return call

    class Generator(CodeGenerator):
        """Joins (`~`) go through the environment, which checks their size."""

        def visit_Concat(self, node: Any, frame: Any) -> None:
            self.write("environment.joined((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})
        code_generator_class = Generator

        def wrap_str_format(self, value: Any) -> Any:
            wrapped = super().wrap_str_format(value)
            if wrapped is not None and WIDE_FORMAT.search(str(value.__self__)):
                raise _TooBig  # '{:>999999999}'.format(x)
            return wrapped

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "%":
                if isinstance(left, str) and WIDE_PERCENT.search(left):
                    raise _TooBig  # '%999999999s' % x
            elif operator == "*":
                n, seq = (right, left) if isinstance(right, int) else (left, right)
                if isinstance(n, int) and _size(seq) * max(n, 0) > cap:
                    raise _TooBig
            elif operator == "**":
                if isinstance(left, int) and isinstance(right, int) and right * max(abs(left), 1).bit_length() > 256:
                    raise _TooBig
            elif _size(left) + _size(right) > cap:
                raise _TooBig
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            check_args(args, kwargs)
            return check(super().call(__context, __obj, *args, **kwargs))

        def joined(self, parts: Sequence[Any]) -> str:
            pieces = [str(p) for p in parts]
            if sum(map(len, pieces)) > cap:
                raise _TooBig
            return "".join(pieces)

    env = Bounded(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = Jinja2ChatFormatter.tojson
    env.filters = {name: bounded(f) for name, f in env.filters.items()}
    return env


def _raise_exception(message: str) -> None:
    raise ValueError(message)


class ChatTemplate:
    """A chat template ready to render messages, or a ModelFileError naming `model` when it is broken."""

    def __init__(self, source: str, *, model: str, eos_token: str, limits: TemplateLimits | None = None) -> None:
        import jinja2

        self.model = model
        self.eos_token = eos_token
        self.limits = limits or TemplateLimits()
        env = _environment(self.limits)
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ModelFileError(
                f"{model}: its chat template does not parse: {first_line(exc)} (line {exc.lineno})"
            ) from None
        except Exception as exc:  # the compiler on text anyone could have crafted
            raise ModelFileError(f"{model}: its chat template does not parse: {first_line(exc)}") from None

    def render(self, messages: Sequence[dict[str, str]], bos_token: str = "") -> str:
        """The prompt for `messages`, ending with the assistant's turn opened."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        limits = self.limits
        context = {
            "messages": list(messages),
            "eos_token": self.eos_token,
            "bos_token": bos_token,
            "raise_exception": _raise_exception,
            "add_generation_prompt": True,
            "strftime_now": Jinja2ChatFormatter.strftime_now,
        }
        out: list[str] = []
        total = 0
        try:
            with _watchdog.limit(limits.max_seconds):
                for piece in self._template.generate(**context):
                    total += len(piece)
                    if total > limits.max_chars:
                        raise _TooBig
                    out.append(piece)
        except _Timeout:
            raise ModelFileError(
                f"{self.model}: its chat template ran longer than {limits.max_seconds:g} s; stopped"
            ) from None
        except (_TooBig, MemoryError):
            raise ModelFileError(
                f"{self.model}: its chat template renders more than {limits.max_chars:,} characters; stopped"
            ) from None
        except RecursionError:
            raise ModelFileError(f"{self.model}: its chat template recurses without end; stopped") from None
        except Exception as exc:  # sandbox violations, undefined names, its own raise_exception, type errors
            raise ModelFileError(
                f"{self.model}: its chat template failed: {type(exc).__name__}: {first_line(exc)}"
            ) from None
        return "".join(out)
