"""Herd's palettes; the app follows the OS theme, and this is its dark one."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

DARK = {
    QPalette.ColorRole.Window: "#2b2b2e",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1e20",
    QPalette.ColorRole.AlternateBase: "#2b2b2e",
    QPalette.ColorRole.ToolTipBase: "#3a3a3d",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#3a3a3d",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff5555",
    QPalette.ColorRole.Highlight: "#3d8ee0",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6cb4ff",
    QPalette.ColorRole.PlaceholderText: "#8a8a8f",
    QPalette.ColorRole.Light: "#4a4a4e",
    QPalette.ColorRole.Midlight: "#3f3f43",
    QPalette.ColorRole.Mid: "#5a5a5f",
    QPalette.ColorRole.Dark: "#18181a",
    QPalette.ColorRole.Shadow: "#000000",
}


def dark_palette() -> QPalette:
    """A plain dark palette, like the ones Linux desktops and macOS use."""
    p = QPalette()
    for role, value in DARK.items():
        p.setColor(role, QColor(value))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7f"))
    return p
