"""How ``herd --help`` reads: every option's default, and examples at the end."""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  herd                                  open the chat window (the demo model when no
                                        Llama 4 is downloaded yet)
  herd ~/models/Llama-4-Scout-Q4_K_M.gguf
                                        open the window on a model file
  herd chat MODEL.gguf --prompt "Hi"    one reply in the terminal
  herd chat MODEL.gguf --image cat.jpg --prompt "What is this?" --stats
  herd info MODEL.gguf                  what a GGUF holds, without loading it
  herd plan MODEL.gguf --vram 24GiB     what would go where, without loading
  herd serve MODEL.gguf --port 8080     a local OpenAI-compatible API on the model
  herd worker                           serve this machine to `--rpc` on another (LAN only)
  herd probe MODEL.gguf --ctx 32768     how well it recalls facts deep in long prompts
  herd pull scout                       find Llama 4 GGUF repos, or download one
  herd models                           the models Herd knows on this computer
  herd doctor                           what this machine runs, and why not
  herd quantize BF16.gguf OUT.gguf --recipe scout-24gb-gpu   (see --list-recipes)

Run `herd COMMAND --help` for a command's options."""


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help when it has a real default not yet said."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        said = "default" in text.lower() or "%(default)" in text
        meaningful = default not in (None, False, [], "", argparse.SUPPRESS)
        if action.option_strings and meaningful and not said:
            text += " (default: %(default)s)"
        return text


class ExamplesFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level help: the option defaults, and the examples kept as written."""


def finish(parser: argparse.ArgumentParser) -> None:
    """Give the parser and each subcommand's parser Herd's help formatting and examples."""
    parser.formatter_class = ExamplesFormatter
    parser.epilog = EXAMPLES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.formatter_class = HelpFormatter


def commands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommands' names."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []
