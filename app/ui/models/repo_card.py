"""A repository's card (name, parameters, licence, vision, downloads) and its list entries.

The card sits above the quant table and shows :class:`~app.core.hub.catalog.RepoCard`:
first what the name tells (the model and its parameter counts), then what the Hub's
model info adds (licence, downloads, whether a vision projector is there). The list on the
left shows each repository in two lines that wrap rather than elide.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidgetItem, QVBoxLayout, QWidget

from app.core.hub.catalog import CuratedRepo, RepoCard, model_facts
from app.core.hub.client import RepoSummary
from app.ui.models.fit_badge import AMBER, BLUE, pill_style, shade
from app.ui.models.model_tables import REPO_ROLE

MUTED = "color: palette(placeholder-text);"


def curated_item(c: CuratedRepo) -> QListWidgetItem:
    """``Llama 4 Scout · unsloth`` over ``dynamic UD quants · 109B total, 17B active``."""
    facts = model_facts(c.repo_id)
    details = [c.note] if c.note else []
    details += [f"{facts.total} total, {facts.active} active"] if facts else []
    item = QListWidgetItem(f"Llama 4 {c.family} · {c.publisher}\n{' · '.join(details)}")
    item.setData(REPO_ROLE, c.repo_id)
    item.setToolTip(c.repo_id)
    return item


def hit_item(h: RepoSummary) -> QListWidgetItem:
    """A search hit: its full name over its downloads (and "gated")."""
    details = f"{h.downloads:,} download{'s' * (h.downloads != 1)} last month"
    item = QListWidgetItem(f"{h.repo_id}\n{details}{' · gated' if h.gated else ''}")
    item.setData(REPO_ROLE, h.repo_id)
    item.setToolTip(h.repo_id)
    return item


class RepoCardView(QFrame):
    """The selected repository at a glance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel("Choose a repository on the left.")
        self.title.setWordWrap(True)
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.title.setFont(font)
        self.vision_badge = QLabel("vision")
        self.gated_badge = QLabel("gated: needs a token")
        for badge in (self.vision_badge, self.gated_badge):
            badge.setVisible(False)
        self.repo_id = QLabel()
        self.repo_id.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.repo_id.setStyleSheet(MUTED)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.vision_badge, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.gated_badge, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.repo_id)
        layout.addWidget(self.facts)
        self._restyle()
        self.clear("Choose a repository on the left.")

    def clear(self, title: str) -> None:
        """No repository: only ``title``."""
        self.title.setText(title)
        for label in (self.repo_id, self.facts, self.vision_badge, self.gated_badge):
            label.setVisible(False)

    def show_card(self, card: RepoCard) -> None:
        """Show ``card``; what is not known yet (before the listing) is left out."""
        self.title.setText(f"{card.title} · {card.publisher}" if card.publisher else card.title)
        self.repo_id.setText(card.repo_id)
        self.repo_id.setVisible(True)
        facts = [card.facts.text()] if card.facts else []
        if card.vision is not None:  # the listing is here: licence and downloads too
            facts.append(card.licence or "licence not stated")
            if not card.vision:
                facts.append("text only (no vision projector)")
            if card.downloads is not None:
                facts.append(card.downloads_text())
        if card.note:
            facts.append(card.note)
        self.facts.setText("  ·  ".join(facts))
        self.facts.setVisible(bool(facts))
        self.vision_badge.setVisible(bool(card.vision))
        self.vision_badge.setToolTip(
            "This repository has a vision projector: the model can read images."
        )
        self.gated_badge.setVisible(card.gated)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Follow a theme change: the badges' colours come from the palette."""
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
        super().changeEvent(event)

    def _restyle(self) -> None:
        palette = self.palette()
        self.vision_badge.setStyleSheet(pill_style(shade(BLUE, palette), palette))
        self.gated_badge.setStyleSheet(pill_style(shade(AMBER, palette), palette))
