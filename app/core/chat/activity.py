"""When a conversation was last active, in a person's words: the sidebar's groups and dates.

Conversations are grouped by the calendar day of their last activity in local time
(:attr:`Conversation.updated_at`), as Jan and ChatGPT group theirs: Today, Yesterday, the
Previous 7 days, Earlier. ``now`` is always passed in, so a fixed clock gives fixed groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum

from app.core.chat.store_schema import Conversation

__all__ = ["ActivityGroup", "activity_label", "activity_tooltip", "group_by_activity"]

WEEK_DAYS = 7


class ActivityGroup(Enum):
    """Where a conversation's last activity falls, seen from today; the value is its heading."""

    TODAY = "Today"
    YESTERDAY = "Yesterday"
    PREVIOUS_7_DAYS = "Previous 7 days"
    EARLIER = "Earlier"


def _day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp).date()


def group_of(timestamp: float, now: float) -> ActivityGroup:
    """The group of an activity at ``timestamp`` (Unix seconds) seen at ``now``.

    A time after ``now`` (another machine's clock) counts as today.
    """
    days = (_day(now) - _day(timestamp)).days
    if days <= 0:
        return ActivityGroup.TODAY
    if days == 1:
        return ActivityGroup.YESTERDAY
    if days <= WEEK_DAYS:
        return ActivityGroup.PREVIOUS_7_DAYS
    return ActivityGroup.EARLIER


def group_by_activity(
    conversations: Sequence[Conversation], now: float
) -> list[tuple[ActivityGroup, list[Conversation]]]:
    """The conversations under their groups' headings, keeping their order (newest first).

    Only groups that hold a conversation are listed, in the order the conversations come.
    """
    groups: list[tuple[ActivityGroup, list[Conversation]]] = []
    for conversation in conversations:
        group = group_of(conversation.updated_at, now)
        if not groups or groups[-1][0] is not group:
            groups.append((group, []))
        groups[-1][1].append(conversation)
    return groups


def activity_label(timestamp: float, now: float) -> str:
    """The short date or time shown on a sidebar row, under its group's heading.

    Today and yesterday: the time ("14:05"); the previous 7 days: the weekday and time
    ("Mon 14:05"); earlier: the date ("3 Mar", or "3 Mar 2024" in another year).
    """
    then = datetime.fromtimestamp(timestamp)
    group = group_of(timestamp, now)
    if group in (ActivityGroup.TODAY, ActivityGroup.YESTERDAY):
        return then.strftime("%H:%M")
    if group is ActivityGroup.PREVIOUS_7_DAYS:
        return then.strftime("%a %H:%M")
    if then.year == datetime.fromtimestamp(now).year:
        return f"{then.day} {then.strftime('%b')}"
    return f"{then.day} {then.strftime('%b %Y')}"


def activity_tooltip(timestamp: float) -> str:
    """The full date and time of the last activity, for a tooltip."""
    then = datetime.fromtimestamp(timestamp)
    return f"Last active {then.strftime('%A')} {then.day} {then.strftime('%B %Y, %H:%M')}"
