"""The pieces of a message bubble: Markdown blocks, code blocks, the inline editor.

A message's Markdown is cut into blocks (``markdown.split_blocks``): a rich-text QLabel per
text block, a :class:`CodeBlockView` with its own Copy per code block. While a reply streams
only its last block changes, so only that widget is re-rendered and re-measured.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QKeyEvent, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.chat.markdown import (
    GAP_PX,
    Block,
    BlockKind,
    MarkdownTheme,
    code_chunks,
    code_html,
    render_markdown,
    split_blocks,
)
from app.ui.images.image_viewer import THUMB_PX, ImageThumb, ImageViewerDialog

__all__ = [  # the image widgets are re-exported from app.ui.images.image_viewer
    "THUMB_PX",
    "CodeBlockView",
    "EditPanel",
    "ImageThumb",
    "ImageViewerDialog",
    "MarkdownBody",
    "RichLabel",
    "action_button",
    "code_font",
    "copy_to_clipboard",
    "natural_width",
]

COPIED_MS = 1200  # how long a Copy button says "Copied"
CODE_PADDING = 10  # inside a code block's frame, each side
SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse
    | Qt.TextInteractionFlag.TextSelectableByKeyboard
    | Qt.TextInteractionFlag.LinksAccessibleByMouse
)


def code_font() -> QFont:
    """The system's monospace family; the size is left to follow the app's font size."""
    font = QFont([QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()])
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


def copy_to_clipboard(text: str, button: QToolButton | None = None) -> None:
    """Put ``text`` on the clipboard; ``button`` says "Copied" for a moment."""
    QGuiApplication.clipboard().setText(text)
    if button is not None and button.text() != "Copied":
        label = button.text()
        button.setText("Copied")
        QTimer.singleShot(COPIED_MS, button, lambda: button.setText(label))


def natural_width(html: str, font: QFont) -> int:
    """How wide rich text is when nothing wraps (its longest line), in pixels."""
    doc = QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setHtml(html)
    return math.ceil(doc.idealWidth()) + 2


def action_button(text: str, tip: str, parent: QWidget) -> QToolButton:
    """A small flat text button for a message's footer row."""
    button = QToolButton(parent)
    button.setObjectName("bubbleAction")
    button.setText(text)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    return button


class RichLabel(QLabel):
    """A selectable, word-wrapped rich-text label that remembers its height for a width.

    QLabel lays its text out again on every ``heightForWidth``; a layout asks that of every
    label whenever one sibling changes, which made a long streaming reply cost O(length)
    per update. The answers are kept until the text, font or style changes.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._heights: dict[int, int] = {}
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(SELECTABLE)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        """Show ``text`` (rich text)."""
        self._heights.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        """QLabel's answer, remembered."""
        height = self._heights.get(width)
        if height is None:
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """A new font or style lays the text out differently."""
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._heights.clear()
        super().changeEvent(event)


class CodeBlockView(QFrame):
    """One fenced code block: a header with the language and Copy, then the code."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self._code = ""
        self._language = ""
        column = QVBoxLayout(self)
        column.setContentsMargins(CODE_PADDING, 4, CODE_PADDING, CODE_PADDING)
        column.setSpacing(4)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        self.language_label = QLabel(self)
        self.language_label.setObjectName("codeLanguage")
        self.copy_button = action_button("Copy", "Copy this code", self)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        header.addWidget(self.language_label)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        column.addLayout(header)
        self._pieces = QVBoxLayout()
        self._pieces.setSpacing(0)
        column.addLayout(self._pieces)
        self._labels: list[QLabel] = []
        self._sources: list[str] = []
        self._html: list[str] = []
        self._widths: list[int | None] = []
        self._dark: bool | None = None

    @property
    def code(self) -> str:
        """The code, exactly as the message has it."""
        return self._code

    @property
    def language(self) -> str:
        """The fence's language ("" when none was given)."""
        return self._language

    @property
    def code_labels(self) -> list[QLabel]:
        """The labels showing the code, one per piece of about 16 lines."""
        return list(self._labels)

    def html(self) -> str:
        """The HTML of every piece, joined."""
        return "".join(self._html)

    def set_code(self, code: str, language: str, theme: MarkdownTheme) -> str:
        """Show ``code`` highlighted (only pieces that changed); returns the HTML."""
        if (language, theme.dark) != (self._language, self._dark):
            self._sources = [""] * len(self._sources)  # colour every piece again
        self._code, self._language, self._dark = code, language, theme.dark
        self.language_label.setText(language or "code")
        pieces = code_chunks(code)
        for i, piece in enumerate(pieces):
            if i < len(self._sources) and self._sources[i] == piece:
                continue
            if i == len(self._labels):
                self._labels.append(self._new_label())
                self._sources.append("")
                self._html.append("")
                self._widths.append(None)
            self._html[i] = code_html(piece, language, dark=theme.dark)
            self._labels[i].setText(self._html[i])
            self._sources[i], self._widths[i] = piece, None
        for label in self._labels[len(pieces) :]:
            self._pieces.removeWidget(label)
            label.deleteLater()
        n = len(pieces)
        del self._labels[n:], self._sources[n:], self._html[n:], self._widths[n:]
        return self.html()

    def measure(self) -> int:
        """The width this block needs for its longest line."""
        for i, width in enumerate(self._widths):
            if width is None:
                self._widths[i] = natural_width(self._html[i], self._labels[i].font())
        header = self.language_label.sizeHint().width() + self.copy_button.sizeHint().width()
        widest = max((w or 0 for w in self._widths), default=0)
        return max(widest, header + 16) + 2 * CODE_PADDING

    def _new_label(self) -> QLabel:
        label = RichLabel(self)
        label.setObjectName("codeBody")
        label.setFont(code_font())
        self._pieces.addWidget(label)
        return label

    @Slot()
    def _on_copy_button_clicked(self) -> None:
        copy_to_clipboard(self._code, self.copy_button)


class MarkdownBody(QWidget):
    """A message's Markdown as a column of block widgets, re-rendering only what changed.

    ``hard_breaks``: keep every line break as typed (a person's own message); a model's
    reply joins the lines of a paragraph, as Markdown does.
    """

    def __init__(self, parent: QWidget | None = None, *, hard_breaks: bool = False) -> None:
        super().__init__(parent)
        self._hard_breaks = hard_breaks
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.setSpacing(GAP_PX)
        self._blocks: list[Block] = []
        self._widgets: list[QWidget] = []
        self._html: list[str] = []
        self._widths: list[int | None] = []
        self._width = 0
        self._theme = MarkdownTheme()

    @property
    def block_widgets(self) -> list[QWidget]:
        """The widgets, one per block: QLabel for text, CodeBlockView for code."""
        return list(self._widgets)

    def code_blocks(self) -> list[CodeBlockView]:
        """The code blocks, in order."""
        return [w for w in self._widgets if isinstance(w, CodeBlockView)]

    def html(self) -> str:
        """Every block's HTML, joined (for tests and debugging)."""
        return "\n".join(self._html)

    def set_theme(self, theme: MarkdownTheme) -> None:
        """Use new colours from the next render on (call :meth:`render` to redo all)."""
        if theme != self._theme:
            self._theme = theme
            self._blocks = [Block(b.kind, "\x00") for b in self._blocks]  # all stale

    # Hides QWidget.render (painting into a device), which is not virtual and never used here.
    def render(self, source: str) -> None:  # type: ignore[override]
        """Show ``source``; only blocks whose Markdown changed are rendered again."""
        blocks = split_blocks(source)
        for i, block in enumerate(blocks):
            if i < len(self._blocks) and self._blocks[i] == block:
                continue
            if i >= len(self._widgets) or self._blocks[i].kind is not block.kind:
                self._replace(i, block.kind)
            self._show(i, block)
        for widget in self._widgets[len(blocks) :]:
            self._column.removeWidget(widget)
            widget.deleteLater()
        del self._widgets[len(blocks) :], self._html[len(blocks) :], self._widths[len(blocks) :]
        self._blocks = blocks

    def natural_width(self, limit: int) -> int:
        """The widest block's natural width, or ``limit`` as soon as one reaches it."""
        widest = 0
        for i, width in enumerate(self._widths):
            if width is None:
                widget = self._widgets[i]
                if isinstance(widget, CodeBlockView):
                    width = widget.measure()
                else:
                    width = natural_width(self._html[i], widget.font())
                self._widths[i] = width
            widest = max(widest, width)
            if widest >= limit:
                return limit
        return widest

    def set_width(self, width: int) -> None:
        """Give every block this width (new blocks get it too)."""
        if width != self._width:
            self._width = width
            for widget in self._widgets:
                widget.setFixedWidth(width)

    def _replace(self, i: int, kind: BlockKind) -> None:
        widget: QWidget
        if kind is BlockKind.CODE:
            widget = CodeBlockView(self)
        else:
            label = RichLabel(self)
            label.setObjectName("bubbleText")
            label.setOpenExternalLinks(True)
            widget = label
        widget.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Minimum)
        if self._width:
            widget.setFixedWidth(self._width)
        if i < len(self._widgets):
            old = self._widgets[i]
            self._column.replaceWidget(old, widget)
            old.deleteLater()
            self._widgets[i] = widget
        else:
            self._column.addWidget(widget)
            self._widgets.append(widget)
            self._html.append("")
            self._widths.append(None)

    def _show(self, i: int, block: Block) -> None:
        widget = self._widgets[i]
        if isinstance(widget, CodeBlockView):
            html = widget.set_code(block.source, block.language, self._theme)
        else:
            assert isinstance(widget, QLabel)
            html = render_markdown(block.source, self._theme, hard_breaks=self._hard_breaks)
            widget.setText(html)
        self._html[i] = html
        self._widths[i] = None


class EditPanel(QWidget):
    """The editor a sent message turns into: its text, Save & send, Cancel."""

    save_requested = Signal(str)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = QPlainTextEdit(self)
        self.editor.setObjectName("bubbleEditor")
        self.editor.textChanged.connect(self._on_editor_text_changed)
        self.save_button = QPushButton("Save && send", self)
        self.save_button.setDefault(True)
        self.save_button.setToolTip(
            "Send the edited message; the messages after it are replaced (Ctrl+Enter)"
        )
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Keep the message as it was (Esc)")
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.editor.installEventFilter(self)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.save_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.editor)
        column.addLayout(row)

    def start(self, text: str) -> None:
        """Edit ``text``, cursor at the end."""
        self.editor.setPlainText(text)
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)
        self.editor.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Esc cancels and Ctrl+Enter saves while the editor has the focus."""
        if watched is self.editor and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_requested.emit()
                return True
            ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
            if ctrl and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._on_save_button_clicked()
                return True
        return super().eventFilter(watched, event)

    @Slot()
    def _on_editor_text_changed(self) -> None:
        lines = max(2, min(12, self.editor.document().lineCount()))
        frame = 2 * self.editor.frameWidth() + 12
        self.editor.setFixedHeight(lines * self.editor.fontMetrics().lineSpacing() + frame)
        self.save_button.setEnabled(bool(self.editor.toPlainText().strip()))

    @Slot()
    def _on_save_button_clicked(self) -> None:
        text = self.editor.toPlainText().strip()
        if text and self.save_button.isEnabled():
            self.save_requested.emit(text)
