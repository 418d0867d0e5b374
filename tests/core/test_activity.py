"""The sidebar's day groups and dates, seen from a fixed clock."""

from __future__ import annotations

from datetime import datetime

from app.core.chat.activity import (
    ActivityGroup,
    activity_label,
    group_by_activity,
    group_of,
)
from app.core.chat.budget import OverflowPolicy
from app.core.chat.store import ChatStore
from app.core.chat.store_schema import Conversation

NOW = datetime(2026, 11, 23, 0, 30).timestamp()  # just after midnight, a Monday


def _at(*when: int) -> float:
    return datetime(*when).timestamp()


def test_groups_are_calendar_days_not_24_hours() -> None:
    assert group_of(_at(2026, 11, 23, 0, 1), NOW) is ActivityGroup.TODAY
    assert group_of(_at(2026, 11, 22, 23, 59), NOW) is ActivityGroup.YESTERDAY  # 31 min ago
    assert group_of(_at(2026, 11, 21, 0, 0), NOW) is ActivityGroup.PREVIOUS_7_DAYS
    assert group_of(_at(2026, 11, 16, 0, 0), NOW) is ActivityGroup.PREVIOUS_7_DAYS  # 7 days
    assert group_of(_at(2026, 11, 15, 23, 0), NOW) is ActivityGroup.EARLIER
    assert group_of(NOW + 3600, NOW) is ActivityGroup.TODAY  # another clock, ahead


def test_labels_say_what_the_heading_does_not() -> None:
    assert activity_label(_at(2026, 11, 23, 0, 5), NOW) == "00:05"
    assert activity_label(_at(2026, 11, 22, 14, 5), NOW) == "14:05"
    assert activity_label(_at(2026, 11, 19, 14, 5), NOW) == "Thu 14:05"
    assert activity_label(_at(2026, 3, 3, 9, 5), NOW) == "3 Mar"
    assert activity_label(_at(2024, 3, 3, 9, 5), NOW) == "3 Mar 2024"


def test_grouping_keeps_the_order_and_skips_empty_groups(tmp_path) -> None:
    times = iter([_at(2026, 11, 1, 9), _at(2026, 11, 22, 9), _at(2026, 11, 23, 0, 10)])
    with ChatStore(tmp_path / "chats.sqlite3", clock=lambda: next(times)) as store:
        for title in ("old", "yesterday", "today"):
            store.create_conversation(title)
        listed = store.list_conversations()
    groups = group_by_activity(listed, NOW)
    assert [(g, [c.title for c in cs]) for g, cs in groups] == [
        (ActivityGroup.TODAY, ["today"]),
        (ActivityGroup.YESTERDAY, ["yesterday"]),
        (ActivityGroup.EARLIER, ["old"]),
    ]
    lone = Conversation(1, "x", "", OverflowPolicy.STOP, NOW, NOW)
    assert group_by_activity([lone], NOW) == [(ActivityGroup.TODAY, [lone])]
