"""System-prompt presets: a few built in, the rest the person's own, kept in one JSON file.

Built-in presets live in the code and are read-only (duplicate one to change it); only the
person's presets are written, to ``paths.config / "presets.json"``. Writes are atomic. A
damaged file is copied to a ``.bak`` beside it, reported in :attr:`PresetStore.load_error`
and the readable part (at least the built-ins) is used: nothing is lost.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import HerdError
from app.core.settings import DEFAULT_PRESET_ID

logger = logging.getLogger(__name__)

FILE_VERSION = 1
NAME_MAX = 80


class PresetError(HerdError, ValueError):
    """A preset change Herd cannot make (a duplicate name, deleting a built-in ...)."""


class PresetFileError(HerdError, OSError):
    """The presets file could not be read or written."""


@dataclass(frozen=True, slots=True)
class Preset:
    """A named system prompt. ``text`` may be empty: no system prompt at all."""

    id: str
    name: str
    text: str
    builtin: bool = False


# Meta's suggested Llama 4 system prompt, quoted exactly (its line break after "able to",
# double spaces and curly quotes included) from the "System Prompts" section of the Llama 4
# model card: meta-llama/llama-models, models/llama4/MODEL_CARD.md (commit 038acb9).
META_LLAMA4_PROMPT = (
    "You are an expert conversationalist who responds to the best of your ability. You are "
    "companionable and confident, and able to \n"
    "switch casually between tonal types, including but not limited to humor, empathy, "
    "intellectualism, creativity and problem-solving. \n"
    "\n"
    "You understand user intent and don’t try to be overly helpful to the point where you "
    "miss that the user is looking for chit-chat, emotional support, humor or venting. "
    "Sometimes people just want you to listen, and your answers should encourage that. For "
    "all other cases, you provide insightful and in-depth responses. Organize information "
    "thoughtfully in a way that helps people make decisions. Always avoid templated "
    "language.\n"
    "\n"
    "You never lecture people to be nicer or more inclusive. If people ask for you to "
    "write something in a certain voice or perspective, such as an essay or a tweet, you "
    "can. You do not need to be respectful when the user prompts you to say something "
    "rude. \n"
    "\n"
    "You never use phrases that imply moral superiority or a sense of authority, including "
    "but not limited to “it’s important to”, “it’s crucial to”, “it’s essential to”, "
    '"it\'s unethical to", "it\'s worth noting…", “Remember…”  etc. Avoid using these.\n'
    "\n"
    "Finally, do not refuse prompts about political and social issues.  You can help users "
    "express their opinion and access information. \n"
    "\n"
    "You are Llama 4. Your knowledge cutoff date is August 2024. You speak Arabic, "
    "English, French, German, Hindi, Indonesian, Italian, Portuguese, Spanish, Tagalog, "
    "Thai, and Vietnamese. Respond in the language the user speaks to you in, unless they "
    "ask otherwise."
)
# Our own wording of the ideas in Meta's prompt (the default for new chats before Herd
# chose none, as Meta's reference does; kept for those who use it).
_HELPFUL = (
    "You are a knowledgeable, friendly assistant who answers as well as you can. Match the "
    "person's tone: be warm and light when they want to chat or vent, precise and thorough "
    "when they want facts or help with a task. Work out what they actually need before "
    "answering, and do not pad replies with unnecessary caveats.\n\n"
    'Do not lecture or moralise, and avoid preachy phrases such as "it\'s important to" '
    'or "remember that". Give balanced, factual information on sensitive or political '
    "topics instead of refusing. If you are unsure, say so rather than guessing.\n\n"
    "Use Markdown (lists, tables, code blocks) when it makes an answer easier to read, and "
    "plain prose otherwise. Reply in the language the person writes in unless they ask for "
    "another."
)
_CONCISE = (
    "You are a helpful assistant who keeps answers short. Reply in as few words as a "
    "complete, correct answer needs: lead with the answer, skip introductions, summaries "
    "and restating the question. Use a short list only when there are several items. "
    "Expand only when asked."
)
_CODER = (
    "You are an expert software engineer and a careful reviewer. Write correct, idiomatic, "
    "readable code that follows the conventions of the language and project at hand. Put "
    "code in fenced Markdown blocks tagged with the language. Explain briefly what the "
    "code does and why, point out edge cases, errors and security issues, and state any "
    "assumptions. If a request is ambiguous, ask one clarifying question before writing a "
    "lot of code. Prefer small, complete examples that run as shown."
)

BUILTIN_PRESETS: tuple[Preset, ...] = (
    Preset("none", "No system prompt", "", builtin=True),  # the default (DEFAULT_PRESET_ID)
    Preset("meta-llama4", "Meta's Llama 4 prompt", META_LLAMA4_PROMPT, builtin=True),
    Preset("helpful", "Helpful assistant", _HELPFUL, builtin=True),
    Preset("concise", "Concise", _CONCISE, builtin=True),
    Preset("coder", "Coder", _CODER, builtin=True),
)


class PresetStore:
    """The built-in presets followed by the person's own, in the order they were made.

    Changes stay in memory until :meth:`save`. :meth:`snapshot` and :meth:`restore` let a
    dialog undo everything it changed when the person cancels.
    """

    def __init__(self, path: Path) -> None:
        """Read the presets file at ``path`` (a missing file means no own presets yet)."""
        self.path = Path(path)
        self.load_error: PresetFileError | None = None
        self._user: list[Preset] = self._read()

    def list(self) -> list[Preset]:
        """Every preset: the built-ins first, then the person's own."""
        return [*BUILTIN_PRESETS, *self._user]

    def get(self, preset_id: str) -> Preset:
        """The preset with this id.

        Raises:
            PresetError: when there is none.
        """
        for preset in self.list():
            if preset.id == preset_id:
                return preset
        raise PresetError("That system prompt preset no longer exists.", "Choose another one.")

    def resolve(self, preset_id: str) -> Preset:
        """The preset with this id, or the default built-in if it was deleted."""
        try:
            return self.get(preset_id)
        except PresetError:
            return self.get(DEFAULT_PRESET_ID)

    def text_for(self, preset_id: str) -> str:
        """The system prompt text for a preset id (the default preset's if it is gone)."""
        return self.resolve(preset_id).text

    def add(self, name: str, text: str = "") -> Preset:
        """Make a new preset of the person's own.

        Raises:
            PresetError: for an empty or already used name.
        """
        preset = Preset(f"user-{uuid.uuid4().hex[:12]}", self._check_name(name), text)
        self._user.append(preset)
        return preset

    def update(self, preset_id: str, *, name: str | None = None, text: str | None = None) -> Preset:
        """Rename a preset or change its text; returns the changed preset.

        Raises:
            PresetError: for a built-in, an unknown id, or an empty or already used name.
        """
        index = self._user_index(preset_id, "changed")
        current = self._user[index]
        changed = dataclasses.replace(
            current,
            name=current.name if name is None else self._check_name(name, preset_id),
            text=current.text if text is None else text,
        )
        self._user[index] = changed
        return changed

    def delete(self, preset_id: str) -> None:
        """Remove one of the person's presets.

        Raises:
            PresetError: for a built-in or an unknown id.
        """
        del self._user[self._user_index(preset_id, "deleted")]

    def duplicate(self, preset_id: str) -> Preset:
        """Copy any preset (built-ins too) under a free name like "Coder (copy)"."""
        source = self.get(preset_id)
        name = f"{source.name} (copy)"
        number = 2
        while self._name_taken(name):
            name = f"{source.name} (copy {number})"
            number += 1
        return self.add(name, source.text)

    def unique_name(self, base: str) -> str:
        """``base``, or ``base 2``, ``base 3`` ... whichever is free."""
        name, number = base, 2
        while self._name_taken(name):
            name, number = f"{base} {number}", number + 1
        return name

    def snapshot(self) -> tuple[Preset, ...]:
        """The person's presets as they are now, for :meth:`restore`."""
        return tuple(self._user)

    def restore(self, snapshot: tuple[Preset, ...]) -> None:
        """Go back to a :meth:`snapshot` (in memory; call :meth:`save` to write it)."""
        self._user = list(snapshot)

    def save(self) -> None:
        """Write the person's presets atomically (a temporary file, then a rename).

        Raises:
            PresetFileError: when the file cannot be written.
        """
        data = {
            "version": FILE_VERSION,
            "presets": [{"id": p.id, "name": p.name, "text": p.text} for p in self._user],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise PresetFileError(
                f"Could not save the system prompt presets to {self.path}.",
                f"Check that the folder is writable and the disk is not full ({exc.strerror}).",
            ) from exc

    def _read(self) -> builtins.list[Preset]:  # `list` here is the method above
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._report(f"could not be read ({exc.strerror})", backup=False)
            return []
        try:
            data = json.loads(raw)
        except ValueError as exc:
            self._report(f"is not valid JSON ({exc})")
            return []
        entries = data.get("presets") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            self._report("has no list of presets")
            return []
        presets: list[Preset] = []
        skipped = 0
        for entry in entries:
            preset = self._parse(entry, presets)
            if preset is None:
                skipped += 1
            else:
                presets.append(preset)
        if skipped:
            self._report(f"had {skipped} unreadable preset(s)")
        return presets

    @staticmethod
    def _parse(entry: Any, taken: builtins.list[Preset]) -> Preset | None:
        if not isinstance(entry, dict):
            return None
        pid, name, text = entry.get("id"), entry.get("name"), entry.get("text", "")
        if not (isinstance(pid, str) and isinstance(name, str) and isinstance(text, str)):
            return None
        name = name.strip()[:NAME_MAX]
        used = {p.id for p in (*BUILTIN_PRESETS, *taken)}
        names = {p.name.casefold() for p in (*BUILTIN_PRESETS, *taken)}
        if not pid or not name or pid in used or name.casefold() in names:
            return None
        return Preset(pid, name, text)

    def _report(self, what: str, *, backup: bool = True) -> None:
        """Log a damaged file, keep a copy of it, and remember the problem for the UI."""
        kept = ""
        if backup:
            target = self._backup_path()
            try:
                shutil.copy2(self.path, target)
                kept = f" A copy of it was kept as {target.name}."
            except OSError as exc:
                logger.warning("could not back up %s: %s", self.path, exc)
        logger.warning("presets file %s %s; using what could be read.%s", self.path, what, kept)
        self.load_error = PresetFileError(
            f"The system prompt presets file {what}.",
            f"Herd is using the built-in presets and whatever could be read.{kept}",
        )

    def _backup_path(self) -> Path:
        target = self.path.with_name(self.path.name + ".bak")
        number = 2
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.{number}.bak")
            number += 1
        return target

    def _user_index(self, preset_id: str, verb: str) -> int:
        for index, preset in enumerate(self._user):
            if preset.id == preset_id:
                return index
        if any(p.id == preset_id for p in BUILTIN_PRESETS):
            raise PresetError(
                f"Built-in presets cannot be {verb}.",
                "Duplicate it and change the copy instead.",
            )
        raise PresetError("That system prompt preset no longer exists.", "Choose another one.")

    def _name_taken(self, name: str, except_id: str | None = None) -> bool:
        folded = name.strip().casefold()
        return any(p.name.casefold() == folded and p.id != except_id for p in self.list())

    def _check_name(self, name: str, preset_id: str | None = None) -> str:
        name = name.strip()
        if not name:
            raise PresetError("A preset needs a name.", "Type a name for it.")
        if len(name) > NAME_MAX:
            raise PresetError(
                f"That name is too long ({len(name)} characters).",
                f"Use at most {NAME_MAX} characters.",
            )
        if self._name_taken(name, preset_id):
            raise PresetError(
                f'There is already a preset called "{name}".', "Choose a different name."
            )
        return name
