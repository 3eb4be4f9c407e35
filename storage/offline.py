"""Keep every library off the network: Hearth's models ship inside Python packages.

`ensure_offline()` runs before anything that may import huggingface_hub (the embedder, the trainer, the
CLI's entry point). It lives in the lowest layer so every layer can call it.
"""

import os
import sys


def ensure_offline() -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[name] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    block_openvino_telemetry()


def block_openvino_telemetry() -> None:
    """Make `import openvino_telemetry` fail; call before `import openvino`.

    `import openvino` imports its model converter, which sends a Google Analytics event ("ov import") from a
    forked process whenever its optional `openvino_telemetry` dependency is importable; without it the
    converter uses a built-in no-op stub. pip installs that package alongside openvino, so Hearth hides it.
    """
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
