"""The adapter slot of a live chat model: switch, turn off, and never end up half-switched.

The engine owns one `LiveAdapter` next to its `Llama`. A switch loads the new adapter completely before
touching the active one, so a corrupt or foreign adapter is refused with a KnownError and the previous
adapter keeps serving; only after the swap is the old adapter freed. `borrowed` serves another adapter for
one block (one API request) and puts the active one back, without reading it from the store again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from personalize import runtime


class LiveAdapter:
    def __init__(self, llama: Any, base_sha256: str | None) -> None:
        self._llama = llama
        self._base_sha256 = base_sha256
        self._handle: runtime.AdapterHandle | None = None
        self.active_id: str | None = None

    def use(self, adapter_id: str, data: bytes) -> None:
        """Hot-swap to `data` (GGUF adapter bytes); KnownError leaves the current adapter in place."""
        handle = runtime.load_adapter(self._llama, data, self._base_sha256)
        try:
            runtime.activate(self._llama, handle)
        except BaseException:
            runtime.free(self._llama, handle)
            raise
        self._swap(handle, adapter_id)

    def off(self) -> None:
        runtime.activate(self._llama, None)
        self._swap(None, None)

    def sync(self, store: Any) -> None:
        """Make the live model match the store's registry (at startup, or after `hearth adapters use`)."""
        from personalize.registry import Registry

        registry = Registry(store)
        wanted = registry.active_id()
        if wanted == self.active_id:
            return
        if wanted is None:
            self.off()
        else:
            self.use(wanted, registry.gguf_bytes(wanted))

    @contextlib.contextmanager
    def borrowed(self, adapter_id: str | None, data: bytes | None) -> Iterator[None]:
        """Serve `adapter_id` (None: the base model) inside the block, then restore the active adapter.

        The active adapter stays loaded meanwhile, so restoring it cannot fail on a damaged store; a
        corrupt or foreign borrowed adapter raises KnownError before anything changed.
        """
        handle = None
        if adapter_id is not None:
            assert data is not None
            handle = runtime.load_adapter(self._llama, data, self._base_sha256)
        kept_handle, kept_id = self._handle, self.active_id
        try:
            runtime.activate(self._llama, handle)
            self._handle, self.active_id = handle, adapter_id
            yield
        finally:
            runtime.activate(self._llama, kept_handle)
            self._handle, self.active_id = kept_handle, kept_id
            if handle is not None:
                runtime.free(self._llama, handle)

    def close(self) -> None:
        if self._handle is not None:
            self.off()

    def _swap(self, handle: runtime.AdapterHandle | None, adapter_id: str | None) -> None:
        old, self._handle, self.active_id = self._handle, handle, adapter_id
        if old is not None:
            runtime.free(self._llama, old)
