"""The ctypes gaps Herd fills in llama-cpp-python, on a real model (in a child process)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.engine.engine_config import EngineConfig
from tests.engine.child import herd_llama, run_in_child

LONG_PIECE = "<|text_post_train_reserved_special_token_0|>"


@dataclass(frozen=True)
class Pieces:
    """What llama-cpp-python and llama_ext make of the tiny Scout's tokens."""

    own_detokenize: bytes  # llama-cpp-python's detokenize of LONG_PIECE's token
    special: bytes  # token_bytes(special=True) of it
    hidden: bytes  # token_bytes() of it: a control token in reply text
    ordinary: bytes  # token_bytes() of "a"
    description: str
    wants_bos: bool


def _pieces(path: Path, config: EngineConfig) -> Pieces:
    from app.core.engine import llama_ext

    llm = herd_llama(config, path, n_ctx=64, n_threads=1, verbose=False)
    try:
        (token,) = llm.tokenize(LONG_PIECE.encode(), add_bos=False, special=True)
        (a,) = llm.tokenize(b"a", add_bos=False, special=False)
        return Pieces(
            own_detokenize=llm.detokenize([token], special=True),
            special=llama_ext.token_bytes(llm, token, special=True),
            hidden=llama_ext.token_bytes(llm, token),
            ordinary=llama_ext.token_bytes(llm, a),
            description=llama_ext.model_description(llm),
            wants_bos=llama_ext.wants_bos(llm),
        )
    finally:
        llm.close()


def test_token_bytes_keeps_pieces_longer_than_32_bytes(
    tiny_scout: Path, engine_config: EngineConfig
) -> None:
    pieces = run_in_child(_pieces, tiny_scout, engine_config)
    # llama-cpp-python's own detokenize loses it (its buffer is 32 bytes) ...
    assert pieces.own_detokenize != LONG_PIECE.encode()
    # ... ours does not.
    assert pieces.special == LONG_PIECE.encode()
    # a control token is hidden in reply text, an ordinary one is not
    assert pieces.hidden == b""
    assert pieces.ordinary == b"a"
    assert "17Bx16E (Scout)" in pieces.description
    assert not pieces.wants_bos
