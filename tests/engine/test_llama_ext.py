"""The ctypes gaps Herd fills in llama-cpp-python, on a real model in this process."""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from app.core.engine import llama_ext


def test_token_bytes_keeps_pieces_longer_than_32_bytes(tiny_scout: Path) -> None:
    llm = llama_cpp.Llama(str(tiny_scout), n_ctx=64, n_threads=1, verbose=False)
    try:
        long_piece = "<|text_post_train_reserved_special_token_0|>"
        (token,) = llm.tokenize(long_piece.encode(), add_bos=False, special=True)
        # llama-cpp-python's own detokenize loses it (its buffer is 32 bytes) ...
        assert llm.detokenize([token], special=True) != long_piece.encode()
        # ... ours does not.
        assert llama_ext.token_bytes(llm, token, special=True) == long_piece.encode()
        # a control token is hidden in reply text, an ordinary one is not
        assert llama_ext.token_bytes(llm, token) == b""
        (a,) = llm.tokenize(b"a", add_bos=False, special=False)
        assert llama_ext.token_bytes(llm, a) == b"a"
        assert "17Bx16E (Scout)" in llama_ext.model_description(llm)
        assert not llama_ext.wants_bos(llm)
    finally:
        llm.close()
