"""The model catalog's data and the scan's knowledge of other apps' folders, without any model file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from desktop.engine import model_pull
from desktop.engine.model_scan import _files_name, _ollama_name, places
from storage.errors import KnownError


def test_catalog_entries_are_complete_and_hashes_never_guessed() -> None:
    entries = model_pull.catalog()
    assert len({e.name for e in entries}) == len(entries) >= 8
    for e in entries:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", e.repo) and e.file.endswith(".gguf") and e.revision
        assert e.size_bytes > 100e6 and e.ram_gb * 1e9 > e.size_bytes and e.license
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)


def test_best_fit_is_the_largest_model_that_leaves_room() -> None:
    assert model_pull.best_fit(500_000_000) is None
    small = model_pull.best_fit(2_000_000_000)
    assert small is not None and small.ram_gb <= 1.5
    large = model_pull.best_fit(64_000_000_000)
    assert large is not None and large.ram_gb == max(e.ram_gb for e in model_pull.catalog())


def test_the_mirror_replaces_the_catalogs_host(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = model_pull.catalog()[0]
    assert model_pull.resolve(entry.name).url.startswith(f"https://huggingface.co/{entry.repo}/resolve/")
    monkeypatch.setenv("HEARTH_MODEL_MIRROR", "https://mirror.example.org/hf/")
    spec = model_pull.resolve(entry.name)
    assert spec.url == f"https://mirror.example.org/hf/{entry.repo}/resolve/{entry.revision}/{entry.file}"


def test_a_url_needs_a_well_formed_sha256() -> None:
    with pytest.raises(KnownError, match="needs --sha256"):
        model_pull.resolve("https://example.org/m.gguf")
    with pytest.raises(KnownError, match="64 hexadecimal"):
        model_pull.resolve("https://example.org/m.gguf", "abc")
    with pytest.raises(KnownError, match=r"does not name a \.gguf"):
        model_pull.resolve("https://example.org/m.bin", "a" * 64)


def test_each_apps_override_variable_is_searched_first(tmp_path: Path) -> None:
    env = {"OLLAMA_MODELS": "/o", "HF_HUB_CACHE": "/hub", "LLAMA_CACHE": "/lc", "XDG_DATA_HOME": "/xdg"}
    found = {(p.source, str(p.root)) for p in places(tmp_path, env)}
    assert {("ollama", "/o"), ("huggingface", "/hub"), ("llama.cpp", "/lc")} <= found
    assert ("gpt4all", "/xdg/nomic.ai/GPT4All") in found and ("jan", "/xdg/Jan/data/models") in found
    assert ("lmstudio", str(tmp_path / ".lmstudio" / "models")) in found
    assert ("huggingface", str(tmp_path / ".cache" / "huggingface" / "hub")) in {
        (p.source, str(p.root)) for p in places(tmp_path, {})
    }


def test_names_follow_each_apps_convention() -> None:
    assert _ollama_name(Path("registry.ollama.ai/library/llama3.2/1b")) == "llama3.2:1b"
    assert _ollama_name(Path("registry.ollama.ai/someone/tiny/latest")) == "registry.ollama.ai/someone/tiny:latest"
    hub = Path("models--Qwen--Qwen2.5-0.5B-Instruct-GGUF/snapshots/abc123/qwen2.5-0.5b-instruct-q4_k_m.gguf")
    assert _files_name(hub) == "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"
