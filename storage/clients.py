"""The local API's named clients: one token per app, each with its own scopes, revocable alone.

A token is shown once, when it is made, and kept only as its SHA-256 in the encrypted settings (key
`api.clients`). A plain hash is enough here: tokens are 256 random bits, so there is nothing to guess a
slow hash would protect. Checking a presented token compares its hash with every client's in constant time
and never stops early, so timing tells neither which client nor how much of a guess was right.

Scopes say what a client may reach: `chat` (generation, the personal adapter included), `embeddings`,
`documents` (search and read the indexed documents, ground answers in them), `chats` (search the chat
history, save API exchanges into it). The `default` client, which `hearth api-token` manages, has them all.

`api.ollama_tokenless` is the user's opt-in for Ollama-only tools that cannot send a token: the API then
accepts tokenless chat and embeddings on its Ollama endpoints, base model only (desktop/api/security.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from storage.errors import KnownError
from storage.settings import Settings
from storage.timeutil import now

SCOPES = ("chat", "embeddings", "documents", "chats")
DEFAULT_CLIENT = "default"
TOKEN_PREFIX = "hearth-"
CLIENTS_SETTING = "api.clients"
LEGACY_TOKEN_SETTING = "api.token"  # the single plaintext token of earlier versions, hashed on first use
TOKENLESS_SETTING = "api.ollama_tokenless"
TOKENLESS_CLIENT = "ollama-tokenless"  # how tokenless requests appear in the access log
TOKENLESS_SCOPES = frozenset({"chat", "embeddings"})
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str]
    created: str
    token_hash: str
    base_model_only: bool = False  # the tokenless Ollama client: never the personal adapter

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def to_json(self) -> dict[str, Any]:
        return {"scopes": sorted(self.scopes), "created": self.created, "token_sha256": self.token_hash}


TOKENLESS = Client(TOKENLESS_CLIENT, TOKENLESS_SCOPES, "", "", base_model_only=True)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse(value: str | None) -> dict[str, Client]:
    """The clients from the raw JSON of the `api.clients` setting (also read by the API's own connection)."""
    raw = json.loads(value) if value else {}
    return {
        name: Client(name, frozenset(entry["scopes"]), entry["created"], entry["token_sha256"])
        for name, entry in raw.items()
    }


def find(clients: dict[str, Client], presented: str) -> Client | None:
    """The client whose token this is, compared in constant time against every client (no early exit)."""
    digest = hash_token(presented).encode("ascii")
    found: Client | None = None
    for client in clients.values():
        if secrets.compare_digest(digest, client.token_hash.encode("ascii")):
            found = client
    return found


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise KnownError(f"scopes must be a comma-separated list of {', '.join(SCOPES)} (got {text!r})")
    return scopes


class Clients:
    """Add, rotate, revoke and list clients in the store's settings; every change is one settings write."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _load(self) -> dict[str, Client]:
        raw = self._settings.get(CLIENTS_SETTING)
        return parse(json.dumps(raw) if raw else None)

    def _save(self, clients: dict[str, Client]) -> None:
        self._settings.set(CLIENTS_SETTING, {name: c.to_json() for name, c in sorted(clients.items())})

    def list(self) -> list[Client]:
        self._adopt_legacy_token()
        return sorted(self._load().values(), key=lambda c: c.name)

    def get(self, name: str) -> Client:
        clients = self._load()
        if name not in clients:
            raise KnownError(f"no API client named {name!r} (see `hearth clients list`)")
        return clients[name]

    def add(self, name: str, scopes: frozenset[str]) -> str:
        """Make a client and return its token (shown once: only its hash is kept)."""
        if not NAME_PATTERN.fullmatch(name):
            raise KnownError("a client name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if not scopes or scopes - set(SCOPES):
            raise KnownError(f"scopes must be some of {', '.join(SCOPES)}")
        clients = self._load()
        if name in clients:
            raise KnownError(f"an API client named {name!r} exists: revoke it first, or rotate its token")
        token = new_token()
        clients[name] = Client(name, frozenset(scopes), now(), hash_token(token))
        self._save(clients)
        return token

    def rotate(self, name: str) -> str:
        """A new token for the client; the old one stops working on the next request, running servers too."""
        clients = self._load()
        old = self.get(name)
        token = new_token()
        clients[name] = Client(name, old.scopes, old.created, hash_token(token))
        self._save(clients)
        return token

    def revoke(self, name: str) -> None:
        clients = self._load()
        self.get(name)
        del clients[name]
        self._save(clients)

    def default_token(self, rotate: bool = False) -> str | None:
        """`hearth api-token`: the default client's token when it is made now (first use, or `rotate`);
        None when it exists already, since only its hash is kept."""
        legacy = self._adopt_legacy_token()
        if legacy is not None and not rotate:
            return legacy
        if DEFAULT_CLIENT in self._load():
            return self.rotate(DEFAULT_CLIENT) if rotate else None
        return self.add(DEFAULT_CLIENT, frozenset(SCOPES))

    def _adopt_legacy_token(self) -> str | None:
        """Earlier versions kept one plaintext token: it becomes the default client's (hashed) and is returned
        this once, so clients configured with it keep working."""
        token = self._settings.get(LEGACY_TOKEN_SETTING)
        if not isinstance(token, str) or not token:
            return None
        clients = self._load()
        clients[DEFAULT_CLIENT] = Client(DEFAULT_CLIENT, frozenset(SCOPES), now(), hash_token(token))
        self._save(clients)
        self._settings.delete(LEGACY_TOKEN_SETTING)
        return token

    @property
    def ollama_tokenless(self) -> bool:
        return bool(self._settings.get(TOKENLESS_SETTING, False))

    def set_ollama_tokenless(self, on: bool) -> None:
        self._settings.set(TOKENLESS_SETTING, bool(on))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
