"""Adapter versions kept in the encrypted store: which exist, how good each was, which one is active.

Records live as one JSON list in the store's settings (encrypted database); the adapter GGUF bytes and
the peft weights (to continue training from) live as encrypted blobs. A settings row rather than a table:
the registry is a handful of rows read whole, and a schema migration would be one more thing to order
against every other engineer's migrations for no query it would enable.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from storage.errors import KnownError
from storage.timeutil import now

RECORDS_KEY = "personalize.adapters"
ACTIVE_KEY = "personalize.active"
PREVIOUS_KEY = "personalize.previous_active"
CHECKPOINT_BLOB = "personalize/checkpoint"


@dataclass
class AdapterRecord:
    id: str
    created: str
    base_sha256: str
    base_ppl: float
    adapter_ppl: float
    tokens_trained: int
    steps: int
    parent: str | None = None  # the adapter this one continued from (incremental training)
    config: dict[str, Any] = field(default_factory=dict)
    # The proof shown to the user (records from before these fields existed read as None / empty):
    drift: float | None = None  # general-answer perplexity under the adapter / under the base (see drift.py)
    general_base_ppl: float | None = None
    general_adapter_ppl: float | None = None
    reference_base_p: float | None = None  # mean per-token probability of the reference answers
    reference_adapter_p: float | None = None
    seconds: float | None = None  # wall time of the run: data, training, export and evaluation
    heldout_tokens: int = 0
    near_duplicates: int = 0  # sources kept with their near-duplicate on one side of the held-out split
    refused: str | None = None  # why the run did not activate it automatically (None: it was better)
    samples: list[dict[str, str]] = field(default_factory=list)  # prompt / truth / base / adapter (user text)
    active: bool = False  # filled in by `list`, not stored

    @property
    def improvement(self) -> float:
        """Relative held-out perplexity drop versus the base, 0.25 = 25% lower."""
        return 1.0 - self.adapter_ppl / self.base_ppl if self.base_ppl else 0.0


_STORED_FIELDS = frozenset(AdapterRecord.__dataclass_fields__) - {"active"}


def _gguf_blob(adapter_id: str) -> str:
    return f"adapter/{adapter_id}.gguf"


def _lora_blob(adapter_id: str) -> str:
    return f"adapter/{adapter_id}.lora"


class Registry:
    def __init__(self, store: Any) -> None:
        self._store = store

    def list(self) -> list[AdapterRecord]:
        active = self.active_id()
        records = []
        for raw in self._store.settings.get(RECORDS_KEY, []):
            record = AdapterRecord(**{k: v for k, v in raw.items() if k in _STORED_FIELDS})
            record.active = record.id == active
            records.append(record)
        return records

    def get(self, adapter_id: str) -> AdapterRecord:
        for record in self.list():
            if record.id == adapter_id:
                return record
        raise KnownError(f"There is no adapter {adapter_id!r} (see `hearth adapters list`).")

    def active_id(self) -> str | None:
        value = self._store.settings.get(ACTIVE_KEY)
        return str(value) if value else None

    def active(self) -> AdapterRecord | None:
        active = self.active_id()
        return self.get(active) if active else None

    def add(self, gguf: bytes, lora_state: dict[str, Any], record: AdapterRecord) -> AdapterRecord:
        """Store the adapter's blobs, then its record (a crash in between leaves only orphan blobs)."""
        import torch

        buffer = io.BytesIO()
        torch.save(lora_state, buffer)
        self._store.blobs.put(_gguf_blob(record.id), gguf)
        self._store.blobs.put(_lora_blob(record.id), buffer.getvalue())
        with self._store.db.atomic():  # read-modify-write: another process may add or delete meanwhile
            self._write_records([*self.list(), record])
        return record

    def _write_records(self, records: list[AdapterRecord]) -> None:
        stored = [{k: v for k, v in asdict(r).items() if k != "active"} for r in records]
        self._store.settings.set(RECORDS_KEY, stored)

    def set_active(self, adapter_id: str | None) -> None:
        with self._store.db.atomic():
            if adapter_id is not None:
                self.get(adapter_id)
            previous = self.active_id()
            if previous != adapter_id:
                self._store.settings.set(PREVIOUS_KEY, previous)
            self._store.settings.set(ACTIVE_KEY, adapter_id)

    def rollback(self) -> str | None:
        """Re-activate whatever was active before the last switch (None: the base model)."""
        with self._store.db.atomic():
            previous = self._store.settings.get(PREVIOUS_KEY)
            if previous is not None and previous not in {r.id for r in self.list()}:
                previous = None
            self.set_active(previous)
        return previous

    def delete(self, adapter_id: str) -> None:
        """Drop the record in one transaction, then its blobs (a crash in between leaves only orphan blobs)."""
        with self._store.db.atomic():
            self.get(adapter_id)
            if self.active_id() == adapter_id:
                self.set_active(None)
            self._write_records([r for r in self.list() if r.id != adapter_id])
        self._store.blobs.delete(_gguf_blob(adapter_id))
        self._store.blobs.delete(_lora_blob(adapter_id))

    def gguf_bytes(self, adapter_id: str) -> bytes:
        return bytes(self._store.blobs.get(_gguf_blob(adapter_id)))

    def lora_state(self, adapter_id: str) -> dict[str, Any]:
        import torch

        try:
            return dict(torch.load(io.BytesIO(self._store.blobs.get(_lora_blob(adapter_id))), weights_only=True))
        except KnownError:
            raise
        except Exception as err:
            raise KnownError(f"The stored weights of adapter {adapter_id} are corrupt.") from err

    # -- the one in-progress training checkpoint ----------------------------------------------------

    def checkpoint(self) -> bytes | None:
        blobs = self._store.blobs
        return bytes(blobs.get(CHECKPOINT_BLOB)) if blobs.exists(CHECKPOINT_BLOB) else None

    def save_checkpoint(self, data: bytes) -> None:
        self._store.blobs.put(CHECKPOINT_BLOB, data)

    def drop_checkpoint(self) -> None:
        self._store.blobs.delete(CHECKPOINT_BLOB)


def new_id() -> str:
    """Sortable by creation time, short enough to type: 20260102-1304-a1b2."""
    stamp = now().replace("-", "").replace(":", "").replace("T", "-")[:13]
    return f"{stamp}-{secrets.token_hex(2)}"
