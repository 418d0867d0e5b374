"""The pieces of a tokenized multimodal prompt, as plain data (no llama.cpp here).

:meth:`app.core.engine.llama_vision.Projector.tokenize` yields them; the prompt cache of
:mod:`app.core.engine.multimodal` compares their ids with what the context holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class MediaChunk:
    """One piece of a tokenized multimodal prompt.

    A text chunk holds its token ids. An image chunk holds one stand-in id per position
    (negative, so never a real token, and derived from the image's digest, so the same image
    at the same place gives the same ids: the prompt cache can then skip it next turn).
    """

    tokens: tuple[int, ...]
    handle: Any = None  # the mtmd chunk (image chunks only); valid inside Projector.tokenize


def stand_in_ids(image_id: bytes, ordinal: int, n: int) -> tuple[int, ...]:
    """Negative ids for ``n`` positions of slice ``ordinal`` of the image ``image_id``."""
    ids = []
    for j in range(n):
        h = hashlib.blake2b(b"%s:%d:%d" % (image_id, ordinal, j), digest_size=4).digest()
        ids.append(-1 - (int.from_bytes(h, "little") & 0x3FFFFFFF))
    return tuple(ids)
