"""The reply loop of the engine process: sample, stream text out in batches, then Finished.

Runs in the engine process on a loaded ``llama_cpp.Llama``, after the prompt is tokenized
(and its images, if any, evaluated). Only ``llama_ext`` touches llama.cpp; it is imported
lazily, as the app side imports this package's modules too.
"""

from __future__ import annotations

import codecs
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.core import events as ev
from app.core.settings import SamplingSettings

# The token path's one throttle: the first token goes out at once, then a batch at most
# every 33 ms (~30 updates a second, what a person can read and the window draws). Waking
# the app per token took a core from llama.cpp's threads on small CPUs (bench/moe_cpu_decode).
EMIT_EVERY_S = 0.033


def text_tokens(llm: Any, prompt: str) -> list[int]:
    """A raw ``prompt`` as ids, special tokens parsed, BOS first when the model wants one.

    For plain completion, whose text is the person's own raw prompt; a chat prompt goes
    through :func:`app.core.engine.prompt_tokens.prompt_ids`, which parses special tokens
    only in the format's own text.
    """
    from app.core.engine import llama_ext, prompt_tokens

    tokens = llama_ext.tokenize(llm, prompt.encode("utf-8"), special=True)
    return prompt_tokens.with_bos(llm, tokens)


def stream_reply(
    llm: Any,
    tokens: list[int],
    sampling: SamplingSettings,
    stop_tokens: Sequence[str],
    emit: Callable[[ev.EngineEvent], None],
    should_stop: Callable[[], bool],
    *,
    started: float,
    cached_before: int,
    image_tokens: int = 0,
) -> None:
    """Generate after ``tokens``: Token events (batched), then Finished, or Failed.

    Args:
        llm: The loaded model; ``tokens`` but the last may already be in its context.
        tokens: The whole prompt as ids.
        sampling: Sampling settings; ``max_tokens`` <= 0 means up to the context's end.
        stop_tokens: Texts that end the reply when they are one token each.
        emit: Sends one event to the app.
        should_stop: True once Stop was pressed (checked between tokens).
        started: When the request began (``time.perf_counter()``), for the speeds.
        cached_before: Prompt positions found already evaluated (for the prompt speed).
        image_tokens: Positions the prompt's images fill (reported in Finished).
    """
    from app.core.engine import llama_ext

    n_ctx = llm.n_ctx()
    if len(tokens) >= n_ctx:
        emit(
            ev.Failed(
                f"The conversation is {len(tokens)} tokens; the context holds {n_ctx}.",
                "Start a new chat, shorten it, or load the model with a larger context.",
                context_full=True,
            ),
        )
        return
    stop_ids = set()
    for text in stop_tokens:
        ids = llama_ext.tokenize(llm, str(text).encode("utf-8"), special=True)
        if len(ids) == 1:
            stop_ids.add(ids[0])
    room = n_ctx - len(tokens)
    budget = min(int(sampling.max_tokens), room) if sampling.max_tokens > 0 else room
    seed = sampling.seed if sampling.seed >= 0 else random.randrange(1 << 31)
    llm.set_seed(seed)

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    n_gen = 0
    unsent = 0  # tokens since the last Token event (a character can span several)
    reason = ev.StopReason.MAX_TOKENS if budget < room else ev.StopReason.CONTEXT_FULL
    stop_token = ""  # the end token that ended the reply, as text
    first_at = 0.0
    pending: list[str] = []  # text not yet sent
    last_emit = 0.0
    # Stop interrupts llama.cpp mid-computation, for the prompt and every token: on a busy
    # machine one token's decode can take seconds (llama.cpp's threads spin for cores). The
    # check costs ~0.1 ms a token (one Python call per graph node), about 1% of a decode.
    llama_ext.enable_abort_check(llm, True)
    try:
        for tok in llm.generate(
            tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
        ):
            if not first_at:
                first_at = time.perf_counter()
            if should_stop():
                reason = ev.StopReason.USER
                break
            if tok in stop_ids or llama_ext.is_end_of_generation(llm, tok):
                reason = ev.StopReason.END_OF_TURN
                stop_token = llama_ext.token_bytes(llm, tok, special=True).decode(errors="replace")
                break
            n_gen += 1
            unsent += 1
            text = decoder.decode(llama_ext.token_bytes(llm, tok))
            if text:
                pieces.append(text)
                pending.append(text)
                now = time.perf_counter()
                if now - last_emit >= EMIT_EVERY_S:
                    emit(ev.Token("".join(pending), unsent))
                    pending.clear()
                    unsent, last_emit = 0, now
            if n_gen >= budget:
                break
    except RuntimeError as exc:  # llama_decode failed or was aborted by Stop
        llama_ext.clear_memory(llm)
        if not should_stop():
            emit(ev.Failed(f"Generation failed: {exc}", "See the engine log."))
            return
        reason = ev.StopReason.USER
    tail = decoder.decode(b"", final=True)
    if tail:
        pieces.append(tail)
        pending.append(tail)
    if pending:
        emit(ev.Token("".join(pending), max(unsent, 1)))
    ended = time.perf_counter()
    first_at = first_at or ended
    evaluated = max(len(tokens) - min(cached_before, len(tokens)), 1)
    emit(
        ev.Finished(
            prompt_tokens=len(tokens),
            generated_tokens=n_gen,
            prompt_tok_s=evaluated / max(first_at - started, 1e-9),
            decode_tok_s=(n_gen - 1) / (ended - first_at) if n_gen > 1 else 0.0,
            stop_reason=reason,
            time_to_first_token_s=first_at - started,
            text="".join(pieces),
            image_tokens=image_tokens,
            stop_token=stop_token,
        ),
    )


def stopped_before_reply(started: float) -> ev.Finished:
    """The Finished of a request that Stop ended before its first token."""
    return ev.Finished(
        prompt_tokens=0,
        generated_tokens=0,
        prompt_tok_s=0.0,
        decode_tok_s=0.0,
        stop_reason=ev.StopReason.USER,
        time_to_first_token_s=time.perf_counter() - started,
    )
