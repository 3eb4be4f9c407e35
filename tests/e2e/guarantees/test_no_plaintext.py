"""No plaintext at rest: after the journey, nothing the app wrote holds the canary, a secret, or an adapter.

Scanned: HEARTH_HOME (database, WAL, key file, blobs, backups, logs, run files, cache), the TMPDIR the app
ran with, and the HOME/XDG dirs it ran with (where libraries like to drop caches). The documents folder
itself is the user's own plaintext and is not scanned.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import guarantee_kit as kit
import pytest


def _written_by_app(journey) -> list[Path]:  # type: ignore[no-untyped-def]
    sb = journey.sandbox
    return [sb.home, sb.tmp, sb.root / "user"]


@pytest.mark.slow
def test_the_journey_did_what_a_user_does(journey) -> None:  # type: ignore[no-untyped-def]
    out = journey.outputs
    added = json.loads(out["add"].stdout)
    assert (added["added"], added["failed"], added["pending_vectors"]) == (6, 0, 0), added
    asked = json.loads(out["ask"].stdout)
    assert asked["sources"], "ask --docs found none of the canary documents"
    assert {Path(s["source"]).suffix for s in asked["sources"]} <= {".md", ".txt", ".html", ".eml", ".docx", ".pdf"}
    assert out["chat"].stdout.strip()
    assert f"adapter {journey.adapter_id}" in out["personalize"].stdout
    for step, done in out.items():  # what the user reads is Hearth's own: no library notices or warnings
        assert "Warning:" not in done.stderr and "warnings.warn" not in done.stderr, (step, done.stderr[-2000:])
    assert f"adapter {journey.adapter_id} is now active" in out["use"].stdout
    assert json.loads(out["status"].stdout)["state"] in ("activated", "kept", "refused")  # refused: drift guard
    assert journey.api_reply["choices"][0]["message"]["content"]
    assert journey.api_reply.get("hearth_sources"), "the API answer was not grounded in the documents"
    conversations = json.loads(out["history"].stdout)
    assert len(conversations) >= 3  # ask, chat, and the API call saved with hearth_save
    assert json.loads(out["search"].stdout), "the chats mentioning the canary are not searchable"


@pytest.mark.slow
def test_no_canary_in_any_file_the_app_wrote(journey) -> None:  # type: ignore[no-untyped-def]
    roots = [*_written_by_app(journey), journey.converted_base]
    scanned = sum(1 for root in roots for _ in kit.walk_files(root))
    assert scanned > 5, "the scan saw (almost) nothing: wrong folders?"
    assert (journey.sandbox.home / "hearth.db").stat().st_size > 0
    assert kit.leaks(roots) == []


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above can fail: each encoded form of the canary, planted in a file, is reported."""
    import base64

    forms = {
        "plain.txt": kit.CANARY.encode(),
        "wide.bin": kit.CANARY.encode("utf-16-le"),
        "big.bin": b"\xfe\xff" + kit.CANARY.encode("utf-16-be"),
        "b64-0.json": base64.b64encode(kit.CANARY.encode()),
        "b64-1.json": base64.b64encode(b"x" + kit.CANARY.encode() + b"yz"),
        "b64-2.json": base64.b64encode(b"xy" + kit.CANARY.encode() + b"z"),
        "b64url.json": base64.urlsafe_b64encode(b"\xff\xfe" + kit.CANARY.encode() + b"\xfb"),
    }
    for name, data in forms.items():
        (tmp_path / name).write_bytes(b"prefix" + data + b"suffix")
    (tmp_path / "clean.txt").write_text("nothing to see")
    hit_files = {Path(hit.split(":")[0]).name for hit in kit.leaks([tmp_path])}
    assert hit_files == set(forms)


@pytest.mark.slow
def test_no_secret_in_any_file(journey) -> None:  # type: ignore[no-untyped-def]
    """Passphrases (old and new) and the API token exist only in memory and in the encrypted store."""
    roots = _written_by_app(journey)
    for secret in (kit.PASSPHRASE, journey.sandbox.passphrase, journey.token):
        assert kit.leaks(roots, secret) == [], f"a secret is on disk ({secret[:12]}...)"
    for name, done in journey.outputs.items():
        if name != "history":  # history is the user's own chats, printed on request
            assert journey.token not in done.stderr


@pytest.mark.slow
def test_store_files_are_encrypted_and_private(journey) -> None:  # type: ignore[no-untyped-def]
    home = journey.sandbox.home
    assert kit.files_starting_with([home], b"SQLite format 3\x00") == [], "an unencrypted SQLite file"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    private = [home / "hearth.db", home / "key.json", *(p for p in (home / "blobs").iterdir())]
    assert len(private) > 3  # adapter, LoRA state: at least two blobs
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by other users"
    for folder in ("blobs", "backups", "logs", "run", "cache"):
        if (home / folder).exists():
            assert stat.S_IMODE((home / folder).stat().st_mode) & 0o077 == 0, folder
    record = json.loads((home / "key.json").read_text())
    assert record["custody"] == "passphrase" and record["kdf"]["name"] == "argon2id"
    assert set(record) == {"version", "custody", "kdf", "aead", "wrapped"}  # no pending key left by rekey
    for path in (home / "blobs").iterdir():
        assert path.read_bytes()[:8] == b"HRTHBLB1", f"{path.name} is not an encrypted blob"


@pytest.mark.slow
def test_no_decrypted_adapter_anywhere(journey) -> None:  # type: ignore[no-untyped-def]
    """Adapters were trained, evaluated in llama.cpp, checked and activated: no GGUF was ever left on disk."""
    roots = _written_by_app(journey)
    assert kit.files_starting_with(roots, b"GGUF") == []
    # The torch copy of the public base model (cache/base-<sha>[-<dtype>]/) is public weights, not an adapter.
    cache = journey.sandbox.home / "cache"
    weights = [p for root in roots for p in kit.walk_files(root) if p.suffix.lower() in (".gguf", ".safetensors")]
    assert [p for p in weights if not (p.parent.parent == cache and p.parent.name.startswith("base-"))] == []
    leftovers = sorted(str(p.relative_to(journey.sandbox.tmp)) for p in kit.walk_files(journey.sandbox.tmp))
    assert leftovers == [], f"files left in TMPDIR: {leftovers}"
