"""Headless commands: ``herd info`` and ``herd chat``; and the window's launcher.

Every failure a person can cause (a missing file, a bad GGUF, an engine crash) ends with
one line on stderr and exit code 2; never a traceback or a core dump.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from app.core import events as ev
from app.core.chat.llama4_format import EOM
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.errors import HerdError, one_line
from app.core.gguf.info import GGUFInfo, describe, find_projector, read_gguf, require_supported
from app.core.jobs import CancelToken
from app.core.load import (
    LoadRequest,
    Planned,
    load_model,
    plan_on,
    refusal,
    settings_json,
    summary,
)
from app.core.model_wishes import WISHES_FILE, WishStore
from app.core.paths import AppPaths
from app.core.plan.words import describe as describe_plan
from app.core.settings import SamplingSettings, Settings
from app.core.units import size_text
from app.core.vision import check_image
from app.machine_args import described_hardware, wishes_from_args, worker_args

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_DOES_NOT_FIT = 3  # as `herd plan`


def fail(message: str) -> int:
    """Print one line on stderr; returns the error exit code."""
    print(f"herd: {message}", file=sys.stderr)
    return EXIT_ERROR


def info(model: str, *, as_json: bool) -> int:
    """``herd info MODEL``: what the file is, read from its header only.

    A readable GGUF that Herd cannot run (another architecture, a projector) is still
    described, then refused in one line with the error exit code.
    """
    try:
        info_ = read_gguf(Path(model))
    except HerdError as exc:
        return fail(exc.one_line())
    summary = describe(info_)
    if as_json:
        print(json.dumps(summary, indent=2))
        return _refuse_unsupported(info_)
    experts = summary["experts"]
    lines = [
        f"file           {summary['path']}",
        f"name           {summary['name']}",
        f"architecture   {summary['architecture']}",
        f"parameters     {summary['parameters'] / 1e9:.3f} B ({summary['parameters']:,})",
        f"layers         {summary['layers']}",
    ]
    if experts["routed"]:
        shared = "yes" if experts["shared"] else "no"
        lines.append(
            f"experts        {experts['routed']} routed, shared expert: {shared}, "
            f"{experts['used_per_token']} used per token, "
            f"MoE layers: {len(summary['moe_layers'])} of {summary['layers']}"
        )
    else:
        lines.append("experts        none (dense)")
    lines.append(f"quant          {summary['quant']}")
    mix = ", ".join(
        f"{name} {size_text(v['bytes'])} ({v['tensors']})"
        for name, v in summary["quant_mix"].items()
    )
    lines.append(f"quant mix      {mix}")
    parts = len(summary["parts"])
    in_parts = f" in {parts} parts" if parts > 1 else ""
    lines.append(f"file size      {size_text(summary['file_size'])}{in_parts}")
    lines.append(f"trained ctx    {summary['context_length']:,} tokens")
    lines.append(f"chat template  {'present' if summary['chat_template'] else 'none'}")
    lines.append(f"vision         {summary['projector'] or 'no projector (mmproj) found'}")
    print("\n".join(lines))
    return _refuse_unsupported(info_)


def _refuse_unsupported(info_: GGUFInfo) -> int:
    try:
        require_supported(info_)
    except HerdError as exc:
        sys.stdout.flush()  # the description first, then the refusal
        return fail(exc.one_line())
    return EXIT_OK


def chat(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """``herd chat MODEL [--prompt TEXT] [--image PATH ...]``: stream replies to stdout.

    Every image is checked before the model loads (a load can take minutes), and the
    images go with the first message.
    """
    images = tuple(getattr(args, "image", None) or ())
    try:
        for image in images:
            check_image(image)
        info_, request = load_request(args, paths, settings, with_projector=bool(images))
    except HerdError as exc:
        return fail(exc.one_line())
    sampling = dataclasses.replace(settings.sampling, max_tokens=args.max_tokens, seed=args.seed)
    if args.temperature is not None:
        sampling = dataclasses.replace(sampling, temperature=args.temperature)

    with EngineClient(paths) as engine:
        if args.dry_run:
            return _dry_run(engine, info_, request, as_json=args.json)
        code = load_for_cli(engine, request, show_plan=args.show_plan)
        if code is not None:
            return code
        assert engine.facts is not None
        if images and not engine.facts.vision:
            return fail(engine.facts.vision_error or "the vision projector did not load")
        history: list[ChatMessage] = []
        if args.system:
            history.append(ChatMessage(Role.SYSTEM, args.system))
        interactive = args.prompt is None
        while True:
            if interactive:
                try:
                    text = input("> ")
                except (EOFError, KeyboardInterrupt):
                    print(file=sys.stderr)
                    return EXIT_OK
                if not text.strip():
                    continue
            else:
                text = args.prompt
            history.append(ChatMessage(Role.USER, text, images=images))
            images = ()  # the images go with the first message only
            code, finished = _stream_reply(engine, history, sampling, stats=args.stats)
            if finished is None:
                return code
            history.append(_reply_message(finished))
            if not interactive:
                return EXIT_OK


def load_request(
    args: argparse.Namespace, paths: AppPaths, settings: Settings, *, with_projector: bool
) -> tuple[GGUFInfo, LoadRequest]:
    """The header and the load request the command line's model and wish flags ask for.

    ``with_projector``: the vision projector is required (``--projector``, or the one next
    to the model), so a missing one is said before the load.

    Raises:
        HerdError: the file, a wish or the described hardware is refused.
    """
    info_ = read_gguf(Path(args.model))
    require_supported(info_)
    projector = _projector_for(args, info_) if with_projector else None
    kept = WishStore(paths.config / WISHES_FILE).get(info_.path)
    wishes = wishes_from_args(args, kept)
    hardware = described_hardware(args)
    if projector is not None:
        wishes = dataclasses.replace(wishes, projector=str(projector))
    request = LoadRequest(
        info_.path,
        wishes,
        base=settings.load,
        hardware=hardware,
        threads=args.threads,
        **worker_args(args),
    )
    return info_, request


def load_for_cli(engine: EngineClient, request: LoadRequest, *, show_plan: bool) -> int | None:
    """Run the load job, saying its plan, refusal or failure on stderr.

    Returns:
        None once the model is loaded (its warnings said), else the exit code to end with.
    """
    for event in load_model(engine, request):
        if isinstance(event, Planned):
            if show_plan:
                print(summary(event.plan), file=sys.stderr)
                print(describe_plan(event.plan), file=sys.stderr)
            if not event.plan.fits:
                fail(_event_line(refusal(event.plan)))
                return EXIT_DOES_NOT_FIT
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            return fail(_event_line(event))
    if engine.facts is None:
        return fail("the engine ended the load without a result")
    for note in engine.facts.plan_notes:
        print(f"herd: warning: the load differs from the plan: {note}", file=sys.stderr)
    for warning in engine.facts.warnings:
        print(f"herd: warning: {warning}", file=sys.stderr)
    if engine.facts.engine_note:
        print(f"herd: note: {engine.facts.engine_note}", file=sys.stderr)
    return None


def _dry_run(engine: EngineClient, info_: GGUFInfo, request: LoadRequest, *, as_json: bool) -> int:
    """Print the settings a load would send to the engine; load nothing."""
    try:
        planned = plan_on(engine, info_, request)
    except HerdError as exc:
        return fail(exc.one_line())
    if as_json:
        print(json.dumps(settings_json(planned), indent=2))
    else:
        print(summary(planned.plan))
        print(describe_plan(planned.plan))
    return EXIT_OK if planned.plan.fits else EXIT_DOES_NOT_FIT


def _projector_for(args: argparse.Namespace, info_: GGUFInfo) -> Path:
    """The projector ``--image`` needs: ``--projector``, or the one next to the model.

    Raises:
        HerdError: there is none, so the images could not be sent (said before the load).
    """
    chosen = getattr(args, "projector", None)
    if chosen:
        if not Path(chosen).is_file():
            raise HerdError(f"the vision projector {chosen} does not exist")
        return Path(chosen)
    found = find_projector(info_.path)
    if found is None:
        raise HerdError(
            f"{info_.path.name} has no vision projector (mmproj*.gguf) next to it, so it "
            "cannot take images",
            "put the model's mmproj GGUF beside it, or pass --projector MMPROJ.",
        )
    return found


def _reply_message(finished: ev.Finished) -> ChatMessage:
    """The reply as the history keeps it: one that ended ``<|eom|>`` is rendered so again."""
    return ChatMessage(
        Role.ASSISTANT, finished.text, expects_tool_result=finished.stop_token == EOM
    )


def _stream_reply(
    engine: EngineClient,
    history: Sequence[ChatMessage],
    sampling: SamplingSettings,
    *,
    stats: bool,
) -> tuple[int, ev.Finished | None]:
    """Print the reply as it streams; returns the exit code and the Finished (None: failed)."""
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        for event in engine.chat(history, sampling, cancel):
            if isinstance(event, ev.Token):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, ev.Finished):
                sys.stdout.write("\n")
                sys.stdout.flush()
                if stats or event.stop_reason is not ev.StopReason.END_OF_TURN:
                    print(
                        f"[{event.generated_tokens} tokens, {event.decode_tok_s:.1f} tok/s, "
                        f"prompt {event.prompt_tokens} tokens at {event.prompt_tok_s:.0f} tok/s, "
                        f"stopped: {event.stop_reason.value}]",
                        file=sys.stderr,
                    )
                return EXIT_OK, event
            elif isinstance(event, ev.Notice):
                print(f"\nherd: note: {event.message}", file=sys.stderr)
            elif isinstance(event, ev.Failed | ev.EngineCrashed):
                sys.stdout.write("\n")
                return fail(_event_line(event)), None
    finally:
        signal.signal(signal.SIGINT, previous)
    return fail("the engine ended the reply without a result"), None


def _event_line(event: ev.Failed | ev.EngineCrashed) -> str:
    if isinstance(event, ev.EngineCrashed):
        cause = next(
            (ln for ln in reversed(event.log_tail) if "GGML_ASSERT" in ln or "error" in ln.lower()),
            "",
        )
        return f"{event.message} {('Last log line: ' + cause.strip()) if cause else ''}".strip()
    return one_line(event.message, event.hint)


def gui(model: str | None, paths: AppPaths, settings: Settings) -> int:
    """Open the chat window; without a display, say so in one line."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    ):
        return fail(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot "
            "open; run it in a desktop session, or use `herd chat MODEL` in a terminal."
        )
    from app.ui.app import run_app

    return run_app(paths, settings, Path(model) if model else None)
