"""Every path Hearth reads or writes is built here, and nowhere else.

`HEARTH_HOME` overrides the platform's user data dir (tests and scripts use it). The home is created
0700: other local users must not even list what it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "Hearth"


def home() -> Path:
    """The data directory, created 0700 on first use."""
    override = os.environ.get("HEARTH_HOME")
    if override:
        path = Path(override).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def database() -> Path:
    return home() / "hearth.db"


def key_file() -> Path:
    """Custody record of the database key: which keychain, or the passphrase-wrapped key."""
    return home() / "key.json"


def backups() -> Path:
    return _sub("backups")


def blobs() -> Path:
    """AEAD-encrypted files for large artefacts (adapters, checkpoints)."""
    return _sub("blobs")


def settings() -> Path:
    """Non-secret settings (registered model files, thread count): no user content."""
    return home() / "settings.json"


def models() -> Path:
    """Chat models downloaded by `hearth models pull` (public files, verified by sha256)."""
    return _sub("models")


def logs() -> Path:
    return _sub("logs")


def cache() -> Path:
    """Public, derived data (the converted base model): safe to delete, never user content."""
    return _sub("cache")


def run_dir() -> Path:
    """Pid and control files of background jobs."""
    return _sub("run")


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
