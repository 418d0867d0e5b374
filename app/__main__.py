"""Herd's entry point: the chat window by default, or a headless subcommand."""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from pathlib import Path

from app import __version__, cli_help, machine_args
from app.core import child_argv
from app.core.paths import AppPaths
from app.core.settings import Settings

EXIT_USAGE = 2

# Commands whose module has ``add_parser(sub)`` and ``run(args, paths, settings) -> int``.
_COMMAND_MODULES: dict[str, str] = {
    "serve": "serve_cli",
    "quantize": "quantize_cli",
    "probe": "probe_cli",
    "worker": "worker_cli",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``herd [gui] [MODEL]``, ``herd info``, ``herd chat``."""
    parser = argparse.ArgumentParser(
        prog="herd",
        description="A private, local chat for Meta's Llama 4 herd. "
        "`herd FILE.gguf` opens the window on a model file.",
    )
    sub = parser.add_subparsers(dest="command")

    gui = sub.add_parser("gui", help="open the chat window (the default)")
    gui.add_argument("model", nargs="?", help="a .gguf to open")

    info = sub.add_parser("info", help="describe a GGUF model without loading it")
    info.add_argument("model", help="the .gguf file (the first part of a split model)")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")

    chat = sub.add_parser("chat", help="chat in the terminal (one prompt, or interactive)")
    chat.add_argument("model", help="the .gguf file (the first part of a split model)")
    chat.add_argument("--prompt", help="send this one message, print the reply and exit")
    chat.add_argument("--system", default="", help="a system prompt")
    machine_args.add_wish_args(
        chat, ctx_help="context length in tokens (default: the model's own, else the plan's)"
    )
    machine_args.add_machine_args(chat)
    chat.add_argument(
        "--show-plan", action="store_true", help="print the load plan to stderr before chatting"
    )
    chat.add_argument(
        "--dry-run", action="store_true", help="plan only: print the engine settings and exit"
    )
    chat.add_argument("--json", action="store_true", help="with --dry-run: print JSON")
    chat.add_argument("--max-tokens", type=int, default=512, help="longest reply, in tokens")
    chat.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature, 0 for greedy (default: the saved sampling settings')",
    )
    chat.add_argument("--seed", type=int, default=-1, help="sampling seed; -1 picks one at random")
    chat.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the plan's choice)"
    )
    chat.add_argument("--stats", action="store_true", help="print speed after each reply")
    chat.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH",
        help="attach an image to the first message (repeatable; needs a vision projector)",
    )
    chat.add_argument(
        "--projector",
        metavar="MMPROJ",
        help="the vision projector GGUF (default: the mmproj*.gguf next to the model)",
    )

    from app import plan_cli

    plan_cli.add_parser(sub)
    from app import hub_cli

    hub_cli.add_parsers(sub)
    from app import doctor_cli

    doctor_cli.add_parser(sub)
    for module in _COMMAND_MODULES.values():
        importlib.import_module(f"app.{module}").add_parser(sub)
    parser.add_argument("--version", action="version", version=f"herd {__version__}")
    cli_help.finish(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run Herd; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    child = child_argv.run_child(argv)  # a bundle's own child process (engine, self-check)
    if child is not None:
        return child
    parser = build_parser()
    commands = cli_help.commands(parser)
    if argv and argv[0] not in commands and not argv[0].startswith("-"):
        if not _names_a_model(argv[0]):
            return _unknown_command(argv[0], commands)
        argv = ["gui", *argv]  # `herd model.gguf` opens the window on that model
    args = parser.parse_args(argv or ["gui"])
    home = os.environ.get("HERD_HOME")
    paths = (AppPaths.under(Path(home)) if home else AppPaths.default()).ensure()
    logging.basicConfig(
        level=logging.INFO,
        filename=paths.logs / "herd.log",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings.load_from(paths.config / "settings.json")

    try:
        return _run(args, paths, settings)
    except BrokenPipeError:  # `herd plan ... | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _names_a_model(word: str) -> bool:
    """Whether a first argument that is no command means a model file to open."""
    return Path(word).is_file() or word.lower().endswith(".gguf") or os.sep in word


def _unknown_command(word: str, commands: list[str]) -> int:
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f" Did you mean `herd {close[0]}`?" if close else ""
    sys.stderr.write(
        f"herd: unknown command {word!r} (and no such model file).{hint}\n"
        f"Commands: {', '.join(commands)}. Open a model with `herd FILE.gguf`; "
        "see `herd --help`.\n"
    )
    return EXIT_USAGE


def _run(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    from app import cli

    if args.command == "info":
        return cli.info(args.model, as_json=args.json)
    if args.command == "chat":
        return cli.chat(args, paths, settings)
    if args.command == "plan":
        from app import plan_cli

        return plan_cli.run(args, paths)
    if args.command in _COMMAND_MODULES:
        module = importlib.import_module(f"app.{_COMMAND_MODULES[args.command]}")
        return int(module.run(args, paths, settings))
    if args.command == "doctor":
        from app import doctor_cli

        return doctor_cli.run(args, paths)
    if args.command in {"pull", "models"}:
        from app import hub_cli

        run = hub_cli.run_pull if args.command == "pull" else hub_cli.run_models
        return run(args, paths)
    return cli.gui(args.model, paths, settings)


if __name__ == "__main__":
    sys.exit(main())
