"""EngineClient: the app's side of the engine process.

Each request is a job: a generator of events that ends with a terminal event
(Loaded, Finished, TokenCount, Unloaded, Failed or EngineCrashed). Cancelling the job's
token sends an out-of-band ``stop`` that the engine sees within one token (or one graph
computation during a long prompt). The process, its pipes and the jobs are
:class:`~app.core.engine.process.EngineProcess`; here are the model-level requests: load
(with the GGUF checked first and the prompt format chosen), chat, completion, token
counts, devices.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.core import events as ev
from app.core.chat import attachments
from app.core.chat.formats import PromptFormat, choose_format
from app.core.chat.llama4_format import IMAGE
from app.core.chat.messages import ChatMessage
from app.core.engine import protocol as proto
from app.core.engine import selfcheck
from app.core.engine.engine_config import DEFAULT as DEFAULT_CONFIG
from app.core.engine.engine_config import SAFE as SAFE_CONFIG
from app.core.engine.engine_config import CheckRecord
from app.core.engine.process import LOG_TAIL_LINES, POLL_S, EngineProcess
from app.core.errors import EngineCrashedError, EngineError, HerdError
from app.core.gguf.info import GGUFInfo, find_projector, read_gguf, require_supported
from app.core.hardware.probe import Device, devices_from_ggml
from app.core.jobs import CancelToken
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings

__all__ = ["LOG_TAIL_LINES", "POLL_S", "EngineClient", "EngineProcess", "OnToken"]

OnToken = Callable[[ev.Token], None]
"""Receives a reply's text as it arrives (see :meth:`EngineClient.chat`)."""

logger = logging.getLogger(__name__)


class EngineClient(EngineProcess):
    """The engine's requests in the app's terms: load a model, chat, count tokens."""

    def __init__(self, paths: AppPaths, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(paths, env=env)
        self.prompt_format: PromptFormat | None = None
        self.continue_problem = ""  # why the loaded format cannot continue a reply ("": it can)
        self.check: CheckRecord | None = None  # the engine self-check's verdict, once known
        self._last_load: tuple[str, LoadSettings, str] | None = None  # to reload after a crash
        self._first_decode = False  # no reply yet since a load in a not-yet-proven config
        self._devices: tuple[Device, ...] | None = None  # llama.cpp's, asked once per start

    def start(self) -> None:
        """Start a fresh engine process (stopping a running one first)."""
        super().start()
        self.prompt_format = None
        self._devices = None

    def load(
        self,
        path: str | Path | GGUFInfo,
        settings: LoadSettings,
        cancel: CancelToken | None = None,
        *,
        preflight: bool = True,
        projector: str | Path | None = None,
        vision: bool = True,
    ) -> Iterator[ev.EngineEvent]:
        """Load a model: Progress events, then Loaded or Failed.

        ``path`` may be the header already read (the load job reads it once). The GGUF is
        read (unless given) and checked here first, so a bad file is refused with a clear
        message before llama.cpp sees it. ``preflight=False`` skips only the check of
        layouts known to crash llama.cpp (for crash-recovery tests and experts).

        The vision projector is ``projector`` when given, else the ``mmproj*.gguf`` next to
        the model (``vision=False``: none). ``Loaded.facts.vision`` says whether it loaded;
        a projector that fails to load leaves a text-only model and a warning.
        """
        try:
            info = path if isinstance(path, GGUFInfo) else read_gguf(Path(path))
            if preflight:
                require_supported(info)
        except HerdError as exc:
            yield ev.Failed(exc.user_message, exc.hint)
            return
        if projector is None and vision:
            projector = find_projector(info.path)
        if projector is not None and vision and not Path(projector).is_file():
            yield ev.Failed(
                f"The vision projector {Path(projector).name} does not exist.",
                "Choose the model's mmproj GGUF file, or load the model without one.",
            )
            return
        check = yield from self._checked()
        if check.chosen is None:
            yield ev.Failed(
                check.cause, "Run `herd doctor` for the details, and see the README's note."
            )
            return
        projector_arg = str(projector) if projector is not None and vision else ""
        args = {
            "path": str(info.path),
            "settings": settings.to_dict(),
            "projector": projector_arg,
            "engine": check.chosen.to_dict(),
        }
        self._last_load = (str(info.path), settings, projector_arg)
        self._first_decode = check.chosen.use_extra_bufts
        for event in self._job(proto.OP_LOAD, args, cancel):
            if isinstance(event, ev.Loaded):
                fmt, warnings = choose_format(
                    info,
                    settings.template,
                    bos_token=event.facts.bos_token,
                    eos_token=event.facts.eos_token,
                )
                if event.facts.vision_error:
                    warnings.append(event.facts.vision_error)
                note = ""
                if check.new and check.chosen != DEFAULT_CONFIG:
                    note = check.cause  # said once, the first time it is found
                    self.check = dataclasses.replace(check, new=False)
                facts = _with(
                    event.facts,
                    prompt_format=fmt.name,
                    warnings=tuple(warnings),
                    engine=check.chosen.describe(),
                    engine_note=note,
                )
                self.facts = facts
                self.prompt_format = fmt
                self.continue_problem = fmt.continue_problem()  # a quick render, once
                event = ev.Loaded(facts)
            yield event

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        cancel: CancelToken | None = None,
        *,
        on_token: OnToken | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        continue_final: bool = False,
    ) -> Iterator[ev.EngineEvent]:
        """Generate the assistant's reply: Token events, then Finished or Failed.

        Messages' ``images`` (``sha256:`` refs or file paths) go to the vision projector;
        without one, a conversation with images fails with a message saying so.

        ``tools`` are tool definitions (JSON schemas) the format offers the model, in the
        official template's place (the first user turn). ``on_token``, when given,
        receives the Token events instead, as they arrive, on
        the thread that reads the engine (it must be quick and thread-safe, e.g. emit a
        queued Qt signal); they then are not yielded.

        ``continue_final``: the last message is a reply to go on with; it is left open in the
        prompt (no end of turn after it), and the events carry only the new text.
        """
        try:
            segments = self._format().render_segments(
                messages, tools=tools, continue_final_message=continue_final
            )
            images = self._image_paths(messages, require_vision=True)
        except HerdError as exc:
            yield ev.Failed(exc.user_message, exc.hint)
            return
        args = self._generate_args(sampling, self._format().stop_strings, images)
        args["segments"] = [list(segment) for segment in segments]
        yield from self._generate(args, cancel, on_token)

    def complete(
        self,
        prompt: str,
        sampling: SamplingSettings,
        cancel: CancelToken | None = None,
        stop_tokens: Sequence[str] = (),
        images: Sequence[str | Path] = (),
    ) -> Iterator[ev.EngineEvent]:
        """Plain completion of ``prompt``, the person's own raw text.

        Special tokens in it are parsed (``<|eot|>`` is the control token): a raw prompt is
        written in the model's format on purpose. Chat (:meth:`chat`) never parses special
        tokens in message contents. Each image file in ``images`` replaces one ``<|image|>``
        placeholder, in order.
        """
        args = self._generate_args(sampling, stop_tokens, images)
        args["prompt"] = prompt
        yield from self._generate(args, cancel)

    # -- the engine self-check, and one retry in the safe configuration ---------------
    def _checked(self) -> Generator[ev.EngineEvent, None, CheckRecord]:
        """The self-check's verdict for this machine (run first when there is none)."""
        if self.check is not None:
            return self.check
        record = selfcheck.recorded(self._paths)
        if record is None:
            yield ev.Notice("Checking how llama.cpp runs on this machine (once, about a second)…")
            record = selfcheck.check_and_keep(self._paths, env=self._env)
            if not record.conclusive:  # it says nothing of llama.cpp: check at the next load
                return record
        self.check = record
        return record

    def _generate(
        self, args: dict[str, Any], cancel: CancelToken | None, on_token: OnToken | None = None
    ) -> Iterator[ev.EngineEvent]:
        """A generate job; a crash at the first decode after a load gets one safe retry.

        llama.cpp's repacked CPU weights crash some CPUs at the first decode (its AMX path
        on Intel Xeons). The self-check catches that before the first load; this catches
        what it could not (another model's tensor shapes): the engine restarts, the model
        is reloaded without repacking, the request runs again, and the machine keeps the
        safe configuration from then on.
        """
        first, self._first_decode = self._first_decode, False
        produced: list[bool] = []  # set once a token came (on the reader thread, if pushed)
        push = None
        if on_token is not None:
            token_sink = on_token

            def push(event: ev.EngineEvent) -> bool:
                if not isinstance(event, ev.Token):
                    return False
                produced.append(True)
                token_sink(event)
                return True

        for event in self._job(proto.OP_GENERATE, args, cancel, push):
            if isinstance(event, ev.EngineCrashed) and first and not produced:
                reloaded = yield from self._reload_safe(event)
                if reloaded:
                    yield from self._job(proto.OP_GENERATE, args, cancel, push)
                    return
            if isinstance(event, ev.Token):
                produced.append(True)
            yield event

    def _reload_safe(self, crash: ev.EngineCrashed) -> Generator[ev.EngineEvent, None, bool]:
        if self._last_load is None or self.check is None:
            return False
        how = crash.message.split(": ", 1)[-1].split(".", 1)[0]  # "it crashed (SIGSEGV)"
        why = (
            f"The engine crashed at the first reply with llama.cpp's repacked CPU weights "
            f"({how}); Herd turned them off on this machine and reloaded the model."
        )
        logger.warning("%s", why)
        selfcheck.remember_crash(self._paths, self.check, SAFE_CONFIG, why)
        self.check = dataclasses.replace(self.check, chosen=SAFE_CONFIG, cause=why, new=False)
        path, settings, projector = self._last_load
        self.start()
        for event in self.load(path, settings, projector=projector or None, vision=bool(projector)):
            if isinstance(event, ev.Failed | ev.EngineCrashed):
                yield event
                return False
        yield ev.Notice(why)
        return True

    @staticmethod
    def _generate_args(
        sampling: SamplingSettings, stop_tokens: Sequence[str], images: Sequence[str | Path]
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"sampling": sampling.to_dict(), "stop_tokens": list(stop_tokens)}
        if images:
            args["images"] = [str(p) for p in images]
            args["image_placeholder"] = IMAGE
        return args

    def count_tokens(
        self, text: str | None = None, messages: Sequence[ChatMessage] | None = None
    ) -> int:
        """Tokens in ``text``, or in ``messages`` as the model will see them.

        ``text`` is raw (special tokens parsed, no BOS added). ``messages`` are counted
        exactly as :meth:`chat` evaluates them (contents as plain text, BOS included), so
        the count equals ``Finished.prompt_tokens``. Images count with all the tokens the
        projector gives them. Without a projector (the images cannot be sent) each counts
        as its one placeholder token.

        Raises:
            EngineError: the engine could not count (an image is unreadable, a crash).
        """
        args: dict[str, Any] = {"text": text or ""}
        if messages is not None:
            segments = self._format().render_segments(messages)
            args = {"segments": [list(segment) for segment in segments]}
            images = self._image_paths(messages, require_vision=False)
            if images:
                args["images"] = [str(p) for p in images]
                args["image_placeholder"] = IMAGE
        for event in self._job(proto.OP_TOKENIZE, args, None):
            if isinstance(event, ev.TokenCount):
                return event.n_tokens
            if isinstance(event, ev.EngineCrashed):
                tail = "\n".join(event.log_tail)
                raise EngineCrashedError(event.message, "Reload the model.", tail)
            if isinstance(event, ev.Failed):
                raise EngineError(event.message, event.hint)
        raise EngineError("The engine gave no token count.")

    def devices(self) -> tuple[Device, ...]:
        """llama.cpp's own GPUs (CUDA, Metal) with free memory, as the engine sees them.

        Asked once per engine start, then cached (free memory is as it was at that start;
        the probe gives the current figure).

        Raises:
            EngineError: the engine could not answer (it crashed or is shut down).
        """
        if self._devices is not None and self.alive:
            return self._devices
        for event in self._job(proto.OP_DEVICES, {}, None):
            if isinstance(event, ev.DeviceList):
                self._devices = devices_from_ggml(event.devices)
                return self._devices
            if isinstance(event, ev.Failed | ev.EngineCrashed):
                raise EngineError(event.message, "See the engine log.")
        raise EngineError("The engine gave no device list.")

    def unload(self) -> None:
        """Release the model (the process stays up)."""
        if self.alive:
            for _event in self._job(proto.OP_UNLOAD, {}, None):
                pass
        self.facts = None
        self.prompt_format = None

    def _image_paths(self, messages: Sequence[ChatMessage], *, require_vision: bool) -> list[Path]:
        refs = [ref for message in messages for ref in message.images]
        if not refs:
            return []
        if self.facts is None or not self.facts.vision:
            if not require_vision:
                return []
            why = f" ({self.facts.vision_error})" if self.facts and self.facts.vision_error else ""
            raise EngineError(
                f"This model cannot see images: no vision projector is loaded with it{why}.",
                "Put the model's mmproj GGUF next to it (or choose one) and load it again, "
                "or remove the images.",
            )
        return [attachments.resolve(self._paths, ref) for ref in refs]

    def _format(self) -> PromptFormat:
        if self.prompt_format is None:
            raise EngineError("No model is loaded.", "Load a model first.")
        return self.prompt_format


def _with(facts: ev.ModelFacts, **changes: Any) -> ev.ModelFacts:
    return dataclasses.replace(facts, **changes)
