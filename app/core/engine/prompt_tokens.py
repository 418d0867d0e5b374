"""Tokenizing a rendered prompt so that only the format's own markers are control tokens.

The app sends a chat prompt as segments (``[text, is_format]``, see
:data:`app.core.chat.llama4_format.Segment`). The format's text is tokenized with special
tokens parsed; a message's content never is, so ``<|eot|>`` typed into a message stays
seven characters of text.

The ids are those llama.cpp gives the joined text with special tokens parsed whenever the
contents hold no special-token text (the common case, byte for byte the same as before):
llama.cpp splits a text at its special tokens and tokenizes the pieces between them
separately. So the format's text is split the same way here (at the control tokens its own
tokenization finds), the plain text around each content is joined with the content, and
each run of plain text is tokenized alone, without special-token parsing.

Runs in the engine process; only ``llama_ext`` touches llama.cpp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Atom", "atoms", "count_tokens", "ids_of", "prompt_ids"]

Atom = str | int
"""A run of plain text (tokenized without special-token parsing) or one token id."""


def atoms(llm: Any, segments: Sequence[Sequence[Any]]) -> list[Atom]:
    """Split ``segments`` into plain-text runs and control-token ids.

    Args:
        llm: The loaded model.
        segments: ``(text, is_format)`` pairs, in order.
    """
    out: list[Atom] = []
    for text, is_format in segments:
        text = str(text)
        if not text:
            continue
        for atom in _cached_format_atoms(llm, text) if is_format else [text]:
            if isinstance(atom, str) and out and isinstance(out[-1], str):
                out[-1] += atom
            else:
                out.append(atom)
    return out


def ids_of(llm: Any, parts: Sequence[Atom]) -> list[int]:
    """The ids of :func:`atoms`' output (no BOS added)."""
    from app.core.engine import llama_ext

    ids: list[int] = []
    for atom in parts:
        if isinstance(atom, int):
            ids.append(atom)
        else:
            ids.extend(llama_ext.tokenize(llm, atom.encode("utf-8"), special=False))
    return ids


def prompt_ids(llm: Any, segments: Sequence[Sequence[Any]]) -> list[int]:
    """The whole prompt as ids, BOS first when the model wants one (once, never twice)."""
    return with_bos(llm, ids_of(llm, atoms(llm, segments)))


def count_tokens(llm: Any, segments: Sequence[Sequence[Any]]) -> int:
    """How many ids :func:`prompt_ids` gives (what generation will evaluate)."""
    return len(prompt_ids(llm, segments))


def with_bos(llm: Any, tokens: list[int]) -> list[int]:
    """``tokens`` with BOS put first when the model wants it and the prompt lacks it."""
    from app.core.engine import llama_ext

    bos = llm.token_bos()
    if llama_ext.wants_bos(llm) and bos >= 0 and (not tokens or tokens[0] != bos):
        tokens.insert(0, bos)  # the template left BOS to the tokenizer
    return tokens


_CACHE_LIMIT = 512


def _cached_format_atoms(llm: Any, text: str) -> list[Atom]:
    """:func:`_format_atoms`, remembered on the model: a format's pieces repeat each turn."""
    cache: dict[str, list[Atom]] | None = getattr(llm, "_herd_format_atoms", None)
    if cache is None:
        cache = {}
        llm._herd_format_atoms = cache
    found = cache.get(text)
    if found is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        found = cache[text] = _format_atoms(llm, text)
    return found


def _format_atoms(llm: Any, text: str) -> list[Atom]:
    """The format's text as plain runs and the control tokens llama.cpp finds in it.

    Falls back to the ids as llama.cpp gives them (kept apart from the neighbouring text)
    when the split does not reproduce them exactly, e.g. a tokenizer that strips spaces
    around some special tokens.
    """
    from app.core.engine import llama_ext

    ids = llama_ext.tokenize(llm, text.encode("utf-8"), special=True)
    try:
        parts = _split_at_controls(llm, text.encode("utf-8"), ids)
    except (UnicodeDecodeError, LookupError):
        return list(ids)
    return parts if ids_of(llm, parts) == ids else list(ids)


def _split_at_controls(llm: Any, raw: bytes, ids: Sequence[int]) -> list[Atom]:
    from app.core.engine import llama_ext

    parts: list[Atom] = []
    pos = 0
    for token in ids:
        if not llama_ext.is_control(llm, token):
            continue
        piece = llama_ext.token_bytes(llm, token, special=True)
        at = raw.find(piece, pos) if piece else -1
        if at < 0:
            raise LookupError(token)
        if at > pos:
            parts.append(raw[pos:at].decode("utf-8"))
        parts.append(token)
        pos = at + len(piece)
    if pos < len(raw):
        parts.append(raw[pos:].decode("utf-8"))
    return parts
