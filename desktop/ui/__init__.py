"""Hearth's desktop window (PySide6): imported only on the GUI path, so the CLI never pays for Qt.

Entry point: `desktop.ui.app.run_app(services, self_test, screenshot)`, called by `hearth` with no command.
"""
