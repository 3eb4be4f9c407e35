"""The Qt-free core every front end drives: the llama.cpp runtime, conversations, grounding and models.

`desktop.engine.llama` owns the loaded model and its streaming contract; `conversation` turns it into a
saved chat with optional grounding; `models` is the registry of GGUFs the user can run; `gguf_file` reads
their headers without loading them. Nothing here imports PySide6, torch or a front end.
"""

from desktop.engine.llama import (
    DEFAULT_MAX_TOKENS,
    AdapterChoice,
    ChatEvent,
    Engine,
    GenerationStats,
    Message,
    SamplingParams,
    reply_text,
)
from desktop.engine.model_fit import DEFAULT_N_CTX
from storage.machine import physical_cores

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_N_CTX",
    "AdapterChoice",
    "ChatEvent",
    "Engine",
    "GenerationStats",
    "Message",
    "SamplingParams",
    "physical_cores",
    "reply_text",
]
