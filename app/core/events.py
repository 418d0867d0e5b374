"""Typed events that long jobs yield (load, generate, download ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StopReason(StrEnum):
    """Why a generation ended."""

    END_OF_TURN = "end_of_turn"  # the model emitted an end-of-generation token (<|eot|>, <|eom|>)
    MAX_TOKENS = "max_tokens"
    CONTEXT_FULL = "context_full"
    USER = "user"  # stopped by the person (Stop button, Esc, Ctrl+C)


@dataclass(frozen=True, slots=True)
class Progress:
    """Part of a job is done: ``fraction`` in [0, 1]."""

    fraction: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What a loaded model is, as llama.cpp sees it."""

    path: str
    name: str
    architecture: str
    description: str  # llama.cpp's own, e.g. "17Bx16E (Scout) Q8_0"
    n_params: int
    size_bytes: int
    n_ctx: int
    n_ctx_train: int
    n_vocab: int
    load_seconds: float
    bos_token: str = ""
    eos_token: str = ""
    # (tensor, buffer type) for each tensor a placement override moved, as llama.cpp logged it
    overridden_tensors: tuple[tuple[str, str], ...] = ()
    # what llama.cpp allocated: (buffer name, "model" | "KV" | "compute", bytes)
    buffers: tuple[tuple[str, str, int], ...] = ()
    plan_notes: tuple[str, ...] = ()  # where what was applied differs from the plan
    prompt_format: str = ""  # the renderer's display name, e.g. "Llama 4 (official)"
    warnings: tuple[str, ...] = ()
    vision: bool = False  # a vision projector is loaded: the model can take images
    projector: str = ""  # the projector (mmproj GGUF) loaded with the model, if any
    vision_error: str = ""  # why a projector that was found or chosen did not load
    engine: str = "default"  # the engine configuration it was loaded with (the self-check's)
    engine_note: str = ""  # what the self-check just found, said once ("AMX crashed; off")


@dataclass(frozen=True, slots=True)
class Loaded:
    """A model finished loading."""

    facts: ModelFacts


@dataclass(frozen=True, slots=True)
class Unloaded:
    """The model was released."""


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of generated text (one or more tokens, always whole UTF-8 characters)."""

    text: str
    n_tokens: int = 1


@dataclass(frozen=True, slots=True)
class Finished:
    """A generation ended normally (including a user stop)."""

    prompt_tokens: int
    generated_tokens: int
    prompt_tok_s: float
    decode_tok_s: float
    stop_reason: StopReason
    time_to_first_token_s: float = 0.0
    text: str = ""
    image_tokens: int = 0  # of prompt_tokens, how many the prompt's images filled
    # the text of the end or stop token that ended the reply ("<|eot|>", "<|eom|>"); ""
    # when it ended otherwise (length, Stop, a full context)
    stop_token: str = ""


@dataclass(frozen=True, slots=True)
class TokenCount:
    """The answer to a count-tokens request."""

    n_tokens: int
    image_tokens: int = 0  # of n_tokens, how many the images fill


@dataclass(frozen=True, slots=True)
class DeviceList:
    """llama.cpp's devices: (name, description, ggml device type, free, total bytes)."""

    devices: tuple[tuple[str, str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the person should know that is not a failure (the job goes on)."""

    message: str


@dataclass(frozen=True, slots=True)
class Failed:
    """A job failed; ``message`` and ``hint`` are for people."""

    message: str
    hint: str = ""
    cancelled: bool = False
    log_path: str = ""  # the log that says more ("" when there is none)
    context_full: bool = False  # the prompt does not fit the loaded context


@dataclass(frozen=True, slots=True)
class EngineCrashed:
    """The engine process died; the window keeps running."""

    message: str
    exit_code: int | None = None
    log_tail: tuple[str, ...] = field(default_factory=tuple)


# Everything the engine process and its client yield: one tagged union (the class is the tag).
EngineEvent = (
    Progress
    | Loaded
    | Unloaded
    | Token
    | Finished
    | TokenCount
    | DeviceList
    | Notice
    | Failed
    | EngineCrashed
)
Event = EngineEvent  # the older name
