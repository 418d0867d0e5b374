"""System-prompt presets: built-ins, CRUD, the JSON file and its damage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.core.chat.presets import (
    BUILTIN_PRESETS,
    Preset,
    PresetError,
    PresetFileError,
    PresetStore,
)
from app.core.errors import HerdError
from app.core.settings import DEFAULT_PRESET_ID


@pytest.fixture
def store(tmp_path: Path) -> PresetStore:
    return PresetStore(tmp_path / "config" / "presets.json")


def test_builtins_come_first(store: PresetStore) -> None:
    names = [p.name for p in store.list()]
    assert names == [
        "No system prompt",
        "Meta's Llama 4 prompt",
        "Helpful assistant",
        "Concise",
        "Coder",
    ]
    assert all(p.builtin for p in store.list())
    assert store.get("none").text == ""
    assert store.get(DEFAULT_PRESET_ID) == store.get("none")  # new chats: none, as Meta's
    assert store.get("helpful").text.startswith("You are")  # kept for those who chose it
    assert store.load_error is None


def test_meta_llama4_prompt_is_quoted_exactly(store: PresetStore) -> None:
    """The "System Prompts" text of meta-llama/llama-models models/llama4/MODEL_CARD.md."""
    text = store.get("meta-llama4").text
    # sha256 of the table cell's text at commit 038acb9 (between "<td>\n" and "\n</td>")
    digest = "cea8855df9fba0b5a6a39b888942216cde83abf3ba94ba7e13f17a83a9dda77b"
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == digest
    assert text.startswith("You are an expert conversationalist who responds to the best")
    assert text.endswith(
        "Respond in the language the user speaks to you in, unless they ask otherwise."
    )
    assert "You are Llama 4. Your knowledge cutoff date is August 2024." in text


def test_add_update_delete_and_save(store: PresetStore) -> None:
    a = store.add("  Pirate ", "Talk like a pirate.")
    assert a == Preset(a.id, "Pirate", "Talk like a pirate.", builtin=False)
    b = store.add("Poet")
    store.update(b.id, text="Rhyme.")
    renamed = store.update(a.id, name="Captain")
    assert renamed.name == "Captain" and renamed.text == "Talk like a pirate."
    store.delete(b.id)
    store.save()
    again = PresetStore(store.path)
    assert again.list()[len(BUILTIN_PRESETS) :] == [renamed]
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and [p["name"] for p in data["presets"]] == ["Captain"]
    assert not list(store.path.parent.glob("*.tmp"))


@pytest.mark.parametrize("name", ["Coder", "coder ", "  ", ""])
def test_add_rejects_taken_or_empty_names(store: PresetStore, name: str) -> None:
    with pytest.raises(PresetError) as info:
        store.add(name)
    assert isinstance(info.value, HerdError) and info.value.hint


def test_rename_to_a_taken_name(store: PresetStore) -> None:
    a, b = store.add("One"), store.add("Two")
    with pytest.raises(PresetError, match="already a preset"):
        store.update(b.id, name="one")
    assert store.update(a.id, name="ONE").name == "ONE"  # its own name, other case: fine


def test_too_long_name(store: PresetStore) -> None:
    with pytest.raises(PresetError, match="too long"):
        store.add("x" * 81)


def test_builtins_are_read_only(store: PresetStore) -> None:
    with pytest.raises(PresetError, match="cannot be deleted") as info:
        store.delete("coder")
    assert "Duplicate" in info.value.hint
    with pytest.raises(PresetError, match="cannot be changed"):
        store.update("coder", text="x")
    with pytest.raises(PresetError, match="no longer exists"):
        store.delete("user-missing")
    with pytest.raises(PresetError):
        store.get("user-missing")


def test_duplicate_finds_a_free_name(store: PresetStore) -> None:
    first = store.duplicate("coder")
    second = store.duplicate("coder")
    assert (first.name, second.name) == ("Coder (copy)", "Coder (copy 2)")
    assert first.text == store.get("coder").text and not first.builtin
    assert store.unique_name("New preset") == "New preset"
    store.add("New preset")
    assert store.unique_name("New preset") == "New preset 2"


def test_resolve_falls_back_to_the_default(store: PresetStore) -> None:
    own = store.add("Mine", "my text")
    assert store.text_for(own.id) == "my text"
    assert store.text_for("none") == ""
    assert store.text_for("deleted-long-ago") == store.get(DEFAULT_PRESET_ID).text
    assert store.resolve("deleted-long-ago").id == DEFAULT_PRESET_ID


def test_snapshot_and_restore(store: PresetStore) -> None:
    keep = store.add("Keep", "k")
    snap = store.snapshot()
    store.update(keep.id, text="changed")
    store.add("Dropped")
    store.restore(snap)
    assert store.list()[len(BUILTIN_PRESETS) :] == [keep]


@pytest.mark.parametrize("text", ["{broken", "[]", '{"presets": 3}'])
def test_damaged_file_is_kept_and_reported(tmp_path: Path, text: str) -> None:
    path = tmp_path / "presets.json"
    path.write_text(text, encoding="utf-8")
    store = PresetStore(path)
    assert store.list() == list(BUILTIN_PRESETS)
    assert isinstance(store.load_error, PresetFileError)
    assert "presets.json.bak" in store.load_error.hint
    assert (tmp_path / "presets.json.bak").read_text(encoding="utf-8") == text
    assert path.read_text(encoding="utf-8") == text  # untouched until the next save
    PresetStore(path)  # a second damaged read keeps the first backup too
    assert (tmp_path / "presets.json.2.bak").is_file()


def test_bad_entries_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "presets.json"
    entries = [
        {"id": "user-1", "name": "Good", "text": "g"},
        {"id": "user-2", "name": 5, "text": "bad name"},
        "not an object",
        {"id": "coder", "name": "Clash with a built-in id", "text": ""},
        {"id": "user-3", "name": "good", "text": "same name, other case"},
        {"id": "user-4", "name": "Also good"},
    ]
    path.write_text(json.dumps({"version": 1, "presets": entries}), encoding="utf-8")
    store = PresetStore(path)
    assert [p.name for p in store.list()[len(BUILTIN_PRESETS) :]] == ["Good", "Also good"]
    assert store.load_error is not None and "4 unreadable" in store.load_error.user_message
    assert (tmp_path / "presets.json.bak").is_file()


def test_save_failure_is_a_herd_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = PresetStore(blocker / "presets.json")  # its folder is a file
    store.add("X")
    with pytest.raises(PresetFileError) as info:
        store.save()
    assert isinstance(info.value, OSError) and info.value.hint
