"""The one error type users see.

`KnownError` is a mistake or condition the user can act on (wrong passphrase, corrupt file, unsupported
model). Front ends print its message as one sentence without a traceback; anything else is a bug. It lives in
the lowest layer so every layer can raise it.
"""


class KnownError(Exception):
    """An expected failure with a message fit to show the user as is (never containing secrets)."""
