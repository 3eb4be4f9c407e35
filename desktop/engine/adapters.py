"""Choosing the personal adapter: the one policy the window, the API and `hearth adapters use` share.

`choice` turns a registry id into the `AdapterChoice` an `Engine.chat` call takes for one reply (the API's
`hearth_adapter`); `activate` makes an adapter the user's active one: the live model tries it first, so a
corrupt or foreign adapter is refused before the registry records it, and the model and the registry never
disagree. Both take any object with the Store's interface (a `StoreProxy` on the engine executor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from desktop.engine.llama import AdapterChoice
from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.engine.llama import Engine

BASE_MODEL = "off"  # the id API clients and the CLI use for "no adapter"
ACTIVE = "active"  # the id API clients use for "the user's active adapter", whichever it is


def choice(store: Any, adapter_id: str | None) -> AdapterChoice:
    """The adapter `adapter_id` (None or "off": the base model; "active": the user's active one) with its
    bytes; KnownError for an unknown id, or for "active" when no adapter is active."""
    if adapter_id is None or adapter_id == BASE_MODEL:
        return AdapterChoice(None)
    from personalize.registry import Registry

    registry = Registry(store)
    if adapter_id == ACTIVE:
        active = registry.active_id()
        if active is None:
            raise KnownError("no personal adapter is active: make one with `hearth personalize`")
        adapter_id = active
    registry.get(adapter_id)  # KnownError naming the unknown id
    return AdapterChoice(adapter_id, registry.gguf_bytes(adapter_id))


def activate(engine: Engine | None, store: Any, adapter_id: str | None) -> None:
    """Make `adapter_id` (None: the base model) the active adapter, on the live model (if loaded) first."""
    from personalize.registry import Registry

    picked = choice(store, adapter_id)
    if engine is not None:
        engine.use_adapter(picked.id, picked.data)
    Registry(store).set_active(picked.id)
