"""Keep every library off the network: Hearth's models ship inside Python packages.

`ensure_offline()` runs before anything that may import huggingface_hub (the embedder, the trainer, the
CLI's entry point). It lives in the lowest layer so every layer can call it.
"""

import os


def ensure_offline() -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[name] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
