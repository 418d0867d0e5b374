"""What rendering a model file's chat template may cost: 2 s and 256 MiB, and how to tell.

A GGUF's ``tokenizer.chat_template`` is code from a download. Jinja's sandbox keeps it
away from files and Python internals, but not from Herd's time and memory: two nested
``range(100000)`` loops run for hours, ``'x' * 10**10`` asks for 10 GB. A :class:`Budget`
is what one render may still spend; the sandbox's hooks (:mod:`template_sandbox`) ask it
before every operation that could grow a value past any use, and tick it on every loop
step, call and output, so the render stops with :class:`OverBudget` instead.

Sizes are counted in characters or items ("units"), nested values included and shared
ones counted every time (:func:`size_of`): a value may hold
``max(MIN_VALUE_UNITS, INPUT_FACTOR x the conversation's own size)`` of them, and all text a
render writes (macro and ``{% set %}`` buffers included) ``OUTPUT_FACTOR`` times that.
Bounding the nested size too keeps what Python does in C on a value (compare, hash, print
it) bounded: ``[[a] * 10] * 10`` nested ten deep is small in memory and 10**10 to compare.
Many values alive at once are caught by the process's resident memory, read every
``RSS_EVERY_TICKS`` ticks and after every large value.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import psutil
from jinja2.utils import Namespace

__all__ = [
    "LIMITS",
    "MAX_TEMPLATE_CHARS",
    "MEMORY_LIMIT_BYTES",
    "TIME_LIMIT_S",
    "Budget",
    "OverBudget",
    "check_binop",
    "check_filter",
    "check_method",
    "current_budget",
    "format_units",
    "size_of",
    "sized",
]

TIME_LIMIT_S = 2.0
"""Wall-clock seconds all work on one template may take (compile and render)."""
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024
"""Memory the work on one template may add to the process that does it."""
LIMITS = f"{TIME_LIMIT_S:g} s / {MEMORY_LIMIT_BYTES >> 20} MiB"
MAX_TEMPLATE_CHARS = 1 << 20
"""Longer templates are refused unread; real ones are a few KiB."""

MIN_VALUE_UNITS = 1 << 20
INPUT_FACTOR = 4
OUTPUT_FACTOR = 4
MAX_COUNT_ARG = 1 << 20
"""Largest width or count a template may pass to a filter or method (``center(n)``...)."""
MAX_INT_BITS = 1 << 16
RSS_EVERY_TICKS = 256
RSS_CHECK_UNITS = 1 << 16
_SIZE_TICK_EVERY = 4096
# Filters that return their input's items, a count or a number: no text is built.
_NO_TEXT_FILTERS = frozenset(
    "abs attr batch count d default dictsort first float groupby int items last length list "
    "map max min random reject rejectattr reverse round select selectattr slice sort sum "
    "tojson unique".split()
)

_DIGITS = re.compile(r"\d+")
_TEXT = (str, bytes)
_SEQUENCES = (list, tuple)
_SIZED = (str, bytes, list, tuple, dict)


class OverBudget(Exception):  # noqa: N818 - a verdict, raised inside Jinja, not an error kind
    """A template went past its time or memory budget; the message says how."""


_CURRENT: ContextVar[Budget | None] = ContextVar("herd_template_budget", default=None)


def current_budget() -> Budget:
    """The budget of the render running in this thread (see :meth:`Budget.active`)."""
    budget = _CURRENT.get()
    if budget is None:
        raise RuntimeError("a bounded chat template can only run inside render_template")
    return budget


class Budget:
    """What one render may still spend: a deadline, a size per value, text, memory."""

    __slots__ = ("deadline", "value_units", "output_left", "_ticks", "_process", "_rss_ceiling")

    def __init__(self, deadline: float, input_units: int = 0) -> None:
        self.deadline = deadline
        self.value_units = max(MIN_VALUE_UNITS, INPUT_FACTOR * input_units)
        self.output_left = OUTPUT_FACTOR * self.value_units
        self._ticks = 0
        self._process = _own_process(os.getpid())
        self._rss_ceiling = _rss(self._process) + MEMORY_LIMIT_BYTES

    def active(self) -> _Activation:
        """Make this the budget of the hooks in this thread (``with budget.active():``)."""
        return _Activation(self)

    def tick(self) -> None:
        """One step of work (a loop iteration, a call, an output): check the clock."""
        self._ticks += 1
        if time.monotonic() > self.deadline:
            raise OverBudget(f"it was still running after {TIME_LIMIT_S:g} s")
        if not self._ticks % RSS_EVERY_TICKS:
            self.check_memory()

    def allow(self, units: int) -> None:
        """Refuse to build a value of ``units`` characters or items when it is too big."""
        if units > self.value_units:
            raise OverBudget(f"it would build a value of {units:,} characters or items")

    def allow_count(self, value: Any) -> None:
        """Refuse a width or count argument (``center(10**9)``, ``to_bytes(10**9)``)."""
        if isinstance(value, int) and abs(value) > MAX_COUNT_ARG:
            raise OverBudget(f"it asked for a width or count of {value:,}")

    def charge(self, units: int) -> None:
        """A value of ``units`` was built; a large one makes the memory be checked."""
        self.allow(units)
        if units >= RSS_CHECK_UNITS:
            self.check_memory()

    def write(self, units: int) -> None:
        """``units`` characters of text were written (to the output or a buffer)."""
        self.tick()
        self.output_left -= units
        if self.output_left < 0:
            total = OUTPUT_FACTOR * self.value_units
            raise OverBudget(f"it wrote more than {total:,} characters")
        if units >= RSS_CHECK_UNITS:
            self.check_memory()

    def check_memory(self) -> None:
        """Stop when the process has grown by more than the memory limit."""
        if self._process is not None and _rss(self._process) > self._rss_ceiling:
            raise OverBudget(f"it used more than {MEMORY_LIMIT_BYTES >> 20} MiB")


@lru_cache(maxsize=1)
def _own_process(pid: int) -> psutil.Process | None:
    """This process, for reading its memory (by pid: a forked child gets its own)."""
    try:
        return psutil.Process(pid)
    except psutil.Error:  # no memory reading here: sizes and time still bound a template
        return None


def _rss(process: psutil.Process | None) -> int:
    try:
        return process.memory_info().rss if process is not None else 0
    except psutil.Error:
        return 0


class _Activation:
    __slots__ = ("_budget", "_token")

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    def __enter__(self) -> Budget:
        self._token = _CURRENT.set(self._budget)
        return self._budget

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)


def sized(value: Any) -> int:
    """The length of a string, bytes, list, tuple or dict; 0 for anything else."""
    return len(value) if isinstance(value, _SIZED) else 0


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def check_binop(budget: Budget, op: str, left: Any, right: Any) -> None:
    """Refuse ``left op right`` (an intercepted operator) when it would be too big."""
    if op == "%" and isinstance(left, str | bytes):
        budget.allow(format_units(left, right, budget.value_units, budget))
    elif op == "+" and isinstance(left, str | bytes):
        budget.allow(len(left) + sized(right))
    elif op == "+" and isinstance(left, list | tuple):
        cap = budget.value_units
        budget.allow(size_of(left, cap, budget) + size_of(right, cap, budget))
    elif op == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, str | bytes) and isinstance(times, int):
            budget.allow(len(seq) * max(times, 0))
        elif isinstance(seq, list | tuple) and isinstance(times, int):
            budget.allow(size_of(seq, budget.value_units, budget) * max(times, 0))
        elif isinstance(left, int) and isinstance(right, int):
            _allow_bits(left.bit_length() + right.bit_length())
    elif op == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1:
            _allow_bits(right * left.bit_length())


def _allow_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise OverBudget(f"it would compute a number of {bits:,} bits")


def check_method(
    budget: Budget,
    target: str | bytes | int,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ...]:
    """Check a call of a str, bytes or int method; returns the arguments to call it with."""
    for value in (*args, *kwargs.values()):
        budget.allow_count(value)
    if not isinstance(target, str | bytes):
        return args
    n = len(target)
    if name in ("format", "format_map"):
        values = args[0] if name == "format_map" and args else [*args, *kwargs.values()]
        budget.allow(format_units(target, values, budget.value_units, budget))
    elif name == "join" and args:
        items = list(args[0])
        budget.allow(n * len(items) + size_of(items, budget.value_units, budget))
        args = (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        hits = target.count(old) if old else n + 1
        budget.allow(n + hits * sized(new))
    elif name == "expandtabs":
        tabs = target.count("\t") if isinstance(target, str) else target.count(b"\t")
        budget.allow(n + tabs * abs(_arg(args, kwargs, 0, "tabsize", 8)))
    elif name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        budget.allow(max(n, args[0]))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((sized(v) for v in args[0].values()), default=1)
        budget.allow(n * max(longest, 1))
    return args


def check_filter(
    budget: Budget, name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Check a filter's arguments; returns the value to call it with."""
    cap = budget.value_units
    for arg in (*args, *kwargs.values()):
        budget.allow_count(arg)
    if name in ("join", "sum"):
        value = list(value) if not isinstance(value, str) else value
        units = size_of(value, cap, budget)
        if name == "join":
            units += len(value) * size_of(_arg(args, kwargs, 0, "d", ""), cap, budget)
        elif not isinstance(_arg(args, kwargs, 1, "start", 0), int | float | list):
            units *= max(len(value), 1)  # a tuple or string start is copied at every step
        budget.allow(units)
        return value
    if name in ("batch", "slice"):  # the last row is padded with copies of fill_with
        fill = size_of(_arg(args, kwargs, 1, "fill_with", None), cap, budget)
        budget.allow(
            fill * abs(_arg(args, kwargs, 0, "linecount" if name == "batch" else "slices", 1))
        )
    if name in _NO_TEXT_FILTERS:
        return value
    units = size_of(value, cap, budget)
    budget.allow(units)
    if name == "center":
        budget.allow(max(units, _arg(args, kwargs, 0, "width", 80)))
    elif name == "indent":
        width = _arg(args, kwargs, 0, "width", 4)
        lines = value.count("\n") + 1 if isinstance(value, str) else units
        budget.allow(units + lines * (len(width) if isinstance(width, str) else abs(width)))
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        hits = str(value).count(old) if old else units + 1
        budget.allow(units + hits * len(new))
    elif name == "format":
        budget.allow(format_units(str(value), args or kwargs, cap, budget))
    return value


def size_of(value: Any, limit: int, budget: Budget | None = None) -> int:
    """Units ``value`` amounts to when written out, nested values counted; stops past limit.

    Shared references count every time (``[s] * 1000`` writes ``s`` a thousand times), so
    this measures what ``str()``, ``join`` or ``tojson`` would build, without building it.
    """
    total = 0
    stack = [value]
    steps = 0
    while stack and total <= limit:
        item = stack.pop()
        steps += 1
        if budget is not None and not steps % _SIZE_TICK_EVERY:
            budget.tick()
        if isinstance(item, _TEXT):
            total += len(item) + 2
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, _SEQUENCES):  # the common cases first: ABC checks are slower
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Collection) and not isinstance(item, range):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 16
            if isinstance(item, Namespace):
                # namespace() prints its attributes; Namespace lets this one name through.
                attrs = getattr(item, "_Namespace__attrs", None)
                if isinstance(attrs, Mapping):
                    stack.append(attrs)
    return total


def format_units(fmt: str | bytes, args: Any, limit: int, budget: Budget) -> int:
    """Units ``fmt % args`` or ``fmt.format(*args)`` could build, widths included."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    values = _arguments(args)
    widest = 0
    for run in _DIGITS.findall(text):
        if len(run) > 7:  # int() of a long run is work too
            raise OverBudget(f"its format asks for a width of {len(run)} digits")
        widest = max(widest, int(run))
    for value in values:  # "*" and "{:{}}" take their widths from the arguments
        budget.allow_count(value)
        if isinstance(value, int):
            widest = max(widest, abs(value))
    budget.allow_count(widest)
    biggest = max((size_of(value, limit, budget) for value in values), default=0)
    fields = text.count("%") + text.count("{") + 1
    return len(text) + fields * (biggest + widest)


def _arguments(args: Any) -> list[Any]:
    if isinstance(args, tuple | list):
        return list(args)
    if isinstance(args, Mapping):
        return list(args.values())
    return [args]
