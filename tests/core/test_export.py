"""Exporting a conversation to a file: whole or not at all."""

from __future__ import annotations

import json

import pytest

from app.core.chat.export import ExportError, export_name, write_export
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.store import ChatStore


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        chat = store.create_conversation("Plans: Lisbon/Porto?")
        store.add_message(chat.id, ChatMessage(Role.USER, "Three days in Lisbon?"))
        store.add_message(chat.id, ChatMessage(Role.ASSISTANT, "Day 1: **Alfama**."))
        yield store, chat.id


def test_export_name_is_safe_for_any_title():
    assert export_name("Plans: Lisbon/Porto?", "md") == "Plans_ Lisbon_Porto_.md"
    assert export_name("???", "json") == "___.json"
    assert export_name("   ", "json") == "chat.json"


def test_markdown_and_json(store, tmp_path):
    store, chat = store
    md = write_export(store, chat, "md", tmp_path / "a.md").read_text(encoding="utf-8")
    assert "Three days in Lisbon?" in md and "Day 1: **Alfama**." in md
    data = json.loads(write_export(store, chat, "json", tmp_path / "a.json").read_text())
    contents = [m["content"] for m in data["messages"]]
    assert contents == ["Three days in Lisbon?", "Day 1: **Alfama**."]


def test_unknown_format_and_unwritable_target_leave_nothing(store, tmp_path):
    store, chat = store
    with pytest.raises(ExportError, match="format"):
        write_export(store, chat, "pdf", tmp_path / "a.pdf")
    target = tmp_path / "missing-folder" / "a.md"
    with pytest.raises(ExportError, match="could not write") as caught:
        write_export(store, chat, "md", target)
    assert caught.value.hint
    assert not target.parent.exists()
