"""The composition root: builds Hearth's long-lived objects in one order and closes them in reverse.

Order: the two executors (store, engine: one thread each, started on first use) → store (unlocks the
encrypted database) → engine (loads the chat model) → front end. Store and engine are opened lazily, so
`hearth doctor` or `hearth models list` never pay for a model load or a passphrase prompt, and closed in
`close()`, the single place where shutdown is wired: executors first (engine, then store, so a reply saving
through the store executor can finish), then the engine, then the store. Front ends (CLI, window, API)
receive one `Services` and ask it for what they need; nothing else constructs a Store, an Engine or their
executors. The single-threaded CLI uses `store()` and `engine()` directly; the window and the API submit
their work to `store_executor` and `engine_executor`, the only threads that touch those objects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from desktop.engine import models
from desktop.engine.executor import Executor
from storage import paths
from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.engine import Engine
    from storage.keys import PassphraseSource
    from storage.store import Store

log = logging.getLogger("hearth")


class Services:
    def __init__(
        self,
        passphrase: PassphraseSource = None,
        model_path: Path | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
    ) -> None:
        self._passphrase = passphrase
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._threads = threads
        self._store: Store | None = None
        self._engine: Engine | None = None
        self._typed_passphrase: str | None = None
        self.store_executor = Executor("store")  # owns the Store's SQLCipher connection
        self.engine_executor = Executor("engine")  # owns the llama context

    def store(self) -> Store:
        if self._store is None:
            from storage.store import Store

            source = self._passphrase
            if callable(source):
                prompt = source

                def source(first_run: bool) -> str:  # remembered for `unlocking_passphrase`
                    self._typed_passphrase = prompt(first_run)
                    return self._typed_passphrase

            self._store = Store.open(source)
        return self._store

    def unlocking_passphrase(self) -> str | None:
        """The passphrase that unlocked the store when it was typed or given; None for a keychain.

        For a background job, which gets it through a pipe (`personalize.job.spawn`).
        """
        if self.store().custody == "keyring":
            return None
        if isinstance(self._passphrase, str):
            return self._passphrase
        return self._typed_passphrase  # None: `job.spawn` pipes HEARTH_PASSPHRASE itself

    def engine(self) -> Engine:
        if self._engine is None:
            self._load_engine(apply_adapter=True)
        assert self._engine is not None
        return self._engine

    def set_passphrase_source(self, source: PassphraseSource) -> None:
        """Who answers the store's passphrase question (the GUI swaps the CLI's terminal prompt for a dialog)."""
        self._passphrase = source

    def chat_model_path(self) -> Path:
        """The GGUF the engine runs (or would run): the explicit choice, else the registry's active model."""
        return self._model_path or models.require(models.active_model())

    def reload_engine(
        self, model_path: Path | None = None, threads: int | None = None, *, apply_adapter: bool = True
    ) -> Engine:
        """Close the loaded engine (if any) and load another: a different model, or a new thread count.

        `apply_adapter=False` leaves the personal adapter to the caller: the app applies it with the store
        calls on its store worker, since only that thread may use the Store.
        """
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if model_path is not None:
            self._model_path = model_path
        if threads:
            self._threads = threads
        return self._load_engine(apply_adapter)

    def _load_engine(self, apply_adapter: bool) -> Engine:
        from desktop.engine import DEFAULT_N_CTX, Engine

        engine = Engine.load(self.chat_model_path(), n_ctx=self._n_ctx or DEFAULT_N_CTX, threads=self._threads)
        self._engine = engine
        if apply_adapter and paths.database().exists():  # the active personal adapter is part of the model
            try:
                engine.sync_adapter(self.store())
            except KnownError as exc:  # a damaged adapter must not cost the user their chat
                log.warning("personal adapter not applied, using the base model: %s", exc)
        return engine

    @property
    def engine_loaded(self) -> bool:
        return self._engine is not None

    def close(self) -> None:
        """Close in reverse order of construction: the executors, the engine, then the store."""
        self.engine_executor.close()
        self.store_executor.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._store is not None:
            self._store.close()
            self._store = None
