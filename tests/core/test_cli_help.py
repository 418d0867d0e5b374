"""``herd``'s command line as a newcomer meets it: typos, --version, help and defaults."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

import app
from app.__main__ import _names_a_model, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_a_typo_is_an_unknown_command_not_a_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no file called "pul" here
    assert main(["pul"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'pul'" in err and "herd pull" in err
    assert main(["docter", "--json"]) == 2
    assert "herd doctor" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()  # nothing was started or written


def test_a_model_file_is_still_opened(tmp_path: Path) -> None:
    model = tmp_path / "scout"
    model.write_bytes(b"GGUF")
    assert _names_a_model(str(model))  # an existing file, whatever its name
    assert _names_a_model("missing-model.gguf")  # the window says it is missing
    assert not _names_a_model("pul")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"herd {declared}" == f"herd {app.__version__}"


def test_the_help_has_examples_and_names_the_file_form() -> None:
    text = build_parser().format_help()
    assert "examples:" in text and "herd FILE.gguf" in text
    for command in _subparsers():
        if command != "gui":
            assert f"herd {command}" in text, command  # every command has an example


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_has_help_with_its_default(command: str) -> None:
    sub = _subparsers()[command]
    shown = re.sub(r"\s+", " ", sub.format_help())
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)
        default = action.default
        if action.option_strings and default not in (None, False, [], ""):
            said = f"default: {default}" in shown or "default" in action.help.lower()
            assert said or f"({default})" in shown, (command, action.option_strings, default)
