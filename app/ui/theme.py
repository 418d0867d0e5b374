"""Herd's look: light and dark palettes, the font size, and following the OS theme.

:func:`apply_appearance` is the one entry point. With :attr:`Theme.SYSTEM` the app uses the
platform's own palette when it matches the OS colour scheme (``QStyleHints.colorScheme``)
and one of ours when it does not (some platforms report dark but hand out a light palette),
and it follows the OS when the scheme changes while Herd runs.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.core.settings import Theme, clamp_font_size

logger = logging.getLogger(__name__)

_Role = QPalette.ColorRole

DARK = {
    _Role.Window: "#2b2b2e",
    _Role.WindowText: "#e6e6e6",
    _Role.Base: "#1e1e20",
    _Role.AlternateBase: "#2b2b2e",
    _Role.ToolTipBase: "#3a3a3d",
    _Role.ToolTipText: "#e6e6e6",
    _Role.Text: "#e6e6e6",
    _Role.Button: "#3a3a3d",
    _Role.ButtonText: "#e6e6e6",
    _Role.BrightText: "#ff5555",
    _Role.Highlight: "#3d8ee0",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#6cb4ff",
    _Role.PlaceholderText: "#8a8a8f",
    _Role.Light: "#4a4a4e",
    _Role.Midlight: "#3f3f43",
    _Role.Mid: "#5a5a5f",
    _Role.Dark: "#18181a",
    _Role.Shadow: "#000000",
    _Role.Accent: "#3d8ee0",
}

LIGHT = {
    _Role.Window: "#f3f3f5",
    _Role.WindowText: "#1d1d1f",
    _Role.Base: "#ffffff",
    _Role.AlternateBase: "#f5f5f7",
    _Role.ToolTipBase: "#ffffe8",
    _Role.ToolTipText: "#1d1d1f",
    _Role.Text: "#1d1d1f",
    _Role.Button: "#fbfbfd",
    _Role.ButtonText: "#1d1d1f",
    _Role.BrightText: "#d70015",
    _Role.Highlight: "#2f7ad8",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#0a63c9",
    _Role.PlaceholderText: "#8a8a8f",
    _Role.Light: "#ffffff",
    _Role.Midlight: "#e8e8ec",
    _Role.Mid: "#c2c2c7",
    _Role.Dark: "#9a9aa0",
    _Role.Shadow: "#5a5a5f",
    _Role.Accent: "#2f7ad8",
}

_DISABLED_TEXT = {"dark": "#7a7a7f", "light": "#a0a0a5"}
_FOLLOWER_NAME = "herdAppearanceFollower"


def _palette(colours: dict[QPalette.ColorRole, str], disabled: str) -> QPalette:
    p = QPalette()
    for role, value in colours.items():
        p.setColor(role, QColor(value))
    for role in (_Role.Text, _Role.ButtonText, _Role.WindowText, _Role.HighlightedText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    p.setColor(QPalette.ColorGroup.Disabled, _Role.Highlight, QColor(colours[_Role.Mid]))
    return p


def dark_palette() -> QPalette:
    """A plain dark palette, like the ones Linux desktops and macOS use."""
    return _palette(DARK, _DISABLED_TEXT["dark"])


def light_palette() -> QPalette:
    """A plain light palette, for platforms whose own one does not match the theme."""
    return _palette(LIGHT, _DISABLED_TEXT["light"])


def is_dark(palette: QPalette) -> bool:
    """Whether a palette draws light text on a dark window."""
    return palette.color(_Role.Window).lightness() < palette.color(_Role.WindowText).lightness()


def system_is_dark(app: QGuiApplication) -> bool:
    """The OS colour scheme (Qt 6.5+); an unknown scheme counts as light."""
    hints = app.styleHints()
    if hasattr(hints, "colorScheme"):
        return hints.colorScheme() == Qt.ColorScheme.Dark
    return False  # pragma: no cover - Qt < 6.5


def app_font(font_size: int) -> QFont:
    """The platform's UI font, at ``font_size`` points (0: its own size)."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont)
    size = clamp_font_size(font_size)
    if size:
        font.setPointSize(size)
    return font


class AppearanceFollower(QObject):
    """Keeps the palette in step with the OS colour scheme while the theme is "system".

    One lives as a child of the application; :func:`apply_appearance` creates it.
    """

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.setObjectName(_FOLLOWER_NAME)
        self._app = app
        self.theme = Theme.SYSTEM
        hints = app.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_style_hints_color_scheme_changed)

    def apply_theme(self, theme: Theme) -> None:
        """Use the platform's palette if it fits ``theme``; else Herd's light or dark one."""
        self.theme = theme
        hints = self._app.styleHints()
        # Qt 6.8+: ask the platform for the scheme too, so native title bars match.
        if theme is Theme.SYSTEM and hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
        elif theme is not Theme.SYSTEM and hasattr(hints, "setColorScheme"):
            hints.setColorScheme(
                Qt.ColorScheme.Dark if theme is Theme.DARK else Qt.ColorScheme.Light
            )
        self._set_palette()

    def _set_palette(self) -> None:
        want_dark = self.theme is Theme.DARK or (
            self.theme is Theme.SYSTEM and system_is_dark(self._app)
        )
        before = self._app.palette().cacheKey()
        self._app.setPalette(QPalette())  # back to the platform's own palette
        if is_dark(self._app.palette()) != want_dark:
            self._app.setPalette(dark_palette() if want_dark else light_palette())
            # The classic Windows style ignores palettes; Fusion honours them on every OS.
            if want_dark and self._app.style().name().lower() in {"windowsvista", "windows"}:
                self._app.setStyle("fusion")
        if self._app.palette().cacheKey() != before:
            refresh_styled(self._app)

    @Slot()
    def _on_style_hints_color_scheme_changed(self) -> None:
        if self.theme is Theme.SYSTEM:
            logger.info("the OS colour scheme changed; following it")
            self._set_palette()


def apply_appearance(app: QApplication, theme: Theme | str, font_size: int) -> None:
    """Give the whole application a theme and a font size; takes effect at once.

    Args:
        app: the running application.
        theme: "system" (follow the OS, also when it changes), "light" or "dark".
        font_size: points; 0 means the platform's default size.
    """
    try:
        chosen = Theme(str(theme).lower())
    except ValueError:
        logger.warning("unknown theme %r; following the system", theme)
        chosen = Theme.SYSTEM
    follower = app.findChild(AppearanceFollower, _FOLLOWER_NAME)
    if follower is None:
        follower = AppearanceFollower(app)
    follower.apply_theme(chosen)
    font = app_font(font_size)
    if font != app.font():
        app.setFont(font)
        refresh_styled(app)


def refresh_styled(app: QApplication) -> None:
    """Make widgets that carry a style sheet take the application's new font and palette.

    Qt resolves a styled widget's font and palette (and ``palette(...)`` in its sheet) when
    the sheet is applied, and does not follow a later ``QApplication.setFont`` or
    ``setPalette``; applying the same sheet again re-resolves them, for the widgets below
    it too.
    """
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet)
