"""The one error type users see.

`KnownError` is a mistake or condition the user can act on (wrong passphrase, corrupt file, unsupported
model). Front ends print its message as one sentence without a traceback; anything else is a bug. It lives in
the lowest layer so every layer can raise it. A full disk is one (`DiskFull`): every write path turns
ENOSPC and SQLITE_FULL into it, after rolling back, so the store stays as it was.
"""

import errno


class KnownError(Exception):
    """An expected failure with a message fit to show the user as is (never containing secrets)."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
SQLITE_FULL_MESSAGE = "database or disk is full"  # SQLITE_FULL, as sqlcipher3 words it


class DiskFull(KnownError):
    """No space left for a write (ENOSPC, a quota, a file-size limit, SQLITE_FULL); it was rolled back."""

    def __init__(self) -> None:
        super().__init__(
            "the disk is full, so this was not saved (everything saved before is intact): free some space and try again"
        )


def disk_full(error: BaseException) -> DiskFull | None:
    """The `DiskFull` that `error` means, if it is one (an OSError or a SQLite error from any driver)."""
    if isinstance(error, DiskFull):
        return error
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return DiskFull()
    if SQLITE_FULL_MESSAGE in str(error) and type(error).__module__.startswith(("sqlcipher3", "sqlite3")):
        return DiskFull()
    return None
