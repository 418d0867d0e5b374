"""The Jinja sandbox a model file's chat template runs in: Hugging Face's setup, on a budget.

The environment is the one Hugging Face transformers renders chat templates in (immutable
sandbox, ``trim_blocks``, ``lstrip_blocks``, ``raise_exception``, ``strftime_now``, a
``tojson`` that does not HTML-escape, the ``{% generation %}`` tag), with every way a
template can spend time or memory metered by a :class:`~app.core.chat.template_budget.Budget`:

* ``+ * ** %`` are intercepted operators: checked before they build anything, and (the
  sandbox's rule for intercepted operators) never folded at compile time, so
  ``{{ 'x' * 10**10 }}`` no longer allocates 10 GB while compiling;
* ``~``, slices, list, tuple and dict literals and every ``for`` loop are rewritten in the
  parsed tree to go through metered filters; every filter and call is checked before and
  charged after;
* all output, template text included, passes ``finalize``, so text piled up in macro and
  ``{% set %}`` buffers is counted too;
* ``lipsum``, ``pprint``, ``striptags``, ``urlize`` and ``wordwrap`` are left out: their
  size or running time (regular expressions) cannot be bounded from here.

:func:`render_template` is the one entry; every failure becomes a
:class:`~app.core.errors.TemplateError`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes, pass_context
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from app.core.chat.template_budget import (
    LIMITS,
    MAX_TEMPLATE_CHARS,
    TIME_LIMIT_S,
    Budget,
    OverBudget,
    check_binop,
    check_filter,
    check_method,
    current_budget,
    size_of,
    sized,
)
from app.core.errors import TemplateError

__all__ = ["BoundedSandbox", "compile_template", "over_budget_error", "render_template"]

logger = logging.getLogger(__name__)

_LOOP, _CONCAT, _SLICE, _BUILD = "herd_loop", "herd_concat", "herd_slice", "herd_build"
_LEFT_OUT_FILTERS = ("pprint", "striptags", "urlize", "wordwrap")
_JSON_INDENT_MAX = 64


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # jinja2.pass_context & co. mark a filter with what it wants first.
    kind = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        value = check_filter(budget, name, value, args, kwargs)
        if kind == "context":
            result = func(context, value, *args, **kwargs)
        elif kind == "eval_context":
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif kind == "environment":
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        budget.charge(sized(result))
        return result

    bounded.__name__ = getattr(func, "__name__", name)
    return bounded


@pass_context
def _loop(context: Context, iterable: Any) -> Any:
    budget = current_budget()
    for item in iterable:
        budget.tick()
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    budget = current_budget()
    budget.tick()
    budget.allow(size_of(parts, budget.value_units, budget))
    result = "".join(map(str, parts))
    budget.charge(len(result))
    return result


@pass_context
def _slice(context: Context, value: Any) -> Any:
    budget = current_budget()
    budget.tick()
    budget.charge(sized(value))
    return value


@pass_context
def _build(context: Context, value: Any) -> Any:
    budget = current_budget()
    budget.tick()
    budget.allow(size_of(value, budget.value_units, budget))
    return value


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    budget = current_budget()
    budget.write(len(value) if isinstance(value, str) else size_of(value, budget.value_units))
    return value


def _through(name: str, node: nodes.Node) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _has_variables(items: list[nodes.Expr]) -> bool:
    return not all(isinstance(item, nodes.Const) for item in items)


class _Metering(NodeTransformer):
    """Route loops, ``~``, slices, literals and template text through the metered hooks."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # changes the children in place
        node.iter = _through(_LOOP, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _through(_CONCAT, nodes.List(node.nodes, lineno=node.lineno))

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        return _through(_SLICE, node) if isinstance(node.arg, nodes.Slice) else node

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _through(_BUILD, node) if _has_variables(node.items) else node

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        if node.ctx == "load" and _has_variables(node.items):
            return _through(_BUILD, node)
        return node

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        pairs = [part for pair in node.items for part in (pair.key, pair.value)]
        return _through(_BUILD, node) if _has_variables(pairs) else node

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        # A constant output goes through finalize; template data would be written as is.
        return nodes.Const(node.data, lineno=node.lineno)


class _GenerationTag(Extension):
    """``{% generation %}...{% endgeneration %}``: HF marks assistant text with it; a no-op."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> list[nodes.Node]:
        """Parse the tag's body and return it unchanged."""
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _raise_exception(message: str) -> NoReturn:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson HTML-escapes <, >, & and '; chat templates expect plain JSON.
    # Encoded piece by piece, so a value that prints huge stops at the budget.
    if (
        indent is not None
        and (len(indent) if isinstance(indent, str) else indent) > _JSON_INDENT_MAX
    ):
        raise OverBudget(f"it asked tojson for an indent of {indent!r:.20}")
    encoder = json.JSONEncoder(
        ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )
    budget = current_budget()
    pieces: list[str] = []
    total = 0
    for piece in encoder.iterencode(value):
        total += len(piece)
        budget.allow(total)
        if not len(pieces) % 1024:
            budget.tick()
        pieces.append(piece)
    return "".join(pieces)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Hugging Face's chat-template sandbox with every costly step metered."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_GenerationTag, "jinja2.ext.loopcontrols"],
            finalize=_finalize,
        )
        filters = {k: v for k, v in self.filters.items() if k not in _LEFT_OUT_FILTERS}
        filters["tojson"] = _tojson
        self.filters = {name: _bounded_filter(name, f) for name, f in filters.items()}
        self.filters.update({_LOOP: _loop, _CONCAT: _concat, _SLICE: _slice, _BUILD: _build})
        self.globals.pop("lipsum", None)
        self.globals["raise_exception"] = _raise_exception
        self.globals["strftime_now"] = _strftime_now

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Jinja offers no public hook between parsing and code generation.
        tree = _Metering().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        """Refuse an unsafe attribute at once (the stock sandbox prints it as "")."""
        raise jinja2.exceptions.SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check ``+ * ** %`` before they build anything, charge what they built."""
        budget = current_budget()
        budget.tick()
        check_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        budget.charge(sized(result))
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Check a call (a method of a string may take a width), charge its result."""
        budget = current_budget()
        budget.tick()
        func = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        target = getattr(func, "__self__", None)
        if isinstance(target, str | bytes | int):
            args = check_method(budget, target, getattr(func, "__name__", ""), args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, Mapping | Collection | Namespace) and not isinstance(result, str):
            # dict(a=x, b=x) twice the size of x, namespace(), fromkeys(): all nested
            budget.allow(size_of(result, budget.value_units, budget))
        budget.charge(sized(result))
        return result


def over_budget_error(detail: str) -> TemplateError:
    """The error for a template that went past :data:`LIMITS`; ``detail`` says how."""
    return TemplateError(
        f"The model's chat template ran past Herd's limits of {LIMITS}: {detail}.",
        "Herd does not run this template; use another build of this model.",
    )


@lru_cache(maxsize=8)
def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template in the bounded sandbox (cached).

    Raises:
        OverBudget: The template is longer than any real one.
        jinja2.TemplateError: It does not compile.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise OverBudget(f"it is {len(source):,} characters long")
    return BoundedSandbox().from_string(source)


def render_template(
    source: str, context: Mapping[str, Any], *, deadline: float | None = None
) -> str:
    """Compile and render a model's chat template within :data:`LIMITS`.

    Args:
        source: The Jinja source.
        context: The template's variables (``messages``, ``bos_token`` ...).
        deadline: ``time.monotonic()`` by which compiling and rendering must be done;
            :data:`TIME_LIMIT_S` from now when None.

    Raises:
        TemplateError: The template does not compile, refuses the conversation, tries to
            leave the sandbox, goes past the time or memory limit, or fails otherwise.
    """
    if deadline is None:
        deadline = time.monotonic() + TIME_LIMIT_S
    try:
        template = compile_template(source)
        budget = Budget(deadline, size_of(context, MAX_TEMPLATE_CHARS << 8))
        with budget.active():
            budget.tick()  # compiling may have used the time up
            return template.render(context)
    except (OverBudget, MemoryError) as exc:
        detail = str(exc) if isinstance(exc, OverBudget) else "it ran out of memory"
        raise over_budget_error(detail) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(
            "The model's chat template tried to reach outside its sandbox and was stopped.",
            f"The model file may be malicious; do not use it. ({exc})",
        ) from exc
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise TemplateError(
            f"The model's chat template has a syntax error on line {exc.lineno}: {exc.message}",
            "Use another build of this model.",
        ) from exc
    except jinja2.exceptions.TemplateError as exc:
        raise TemplateError(
            f"The model's chat template refused the conversation: {exc}",
            "Check the order of the messages (e.g. user and assistant alternating).",
        ) from exc
    except Exception as exc:  # a template can fail in any Python way; none may escape raw
        logger.debug("chat template failed", exc_info=True)
        raise TemplateError(
            f"The model's chat template failed: {type(exc).__name__}: {exc}",
            "Use another build of this model.",
        ) from exc
