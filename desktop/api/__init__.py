"""Hearth's local OpenAI-compatible API: other programs on this computer use the personal model.

Loopback only, bearer token from the encrypted store, Host/Origin checks, size limits, one model worker
with a bounded queue; see README.md next to this file. Start it with `hearth serve` or
`desktop.api.server.ApiServer`. Nothing is imported here, so `desktop.api.security` stays cheap to import.
"""
