"""The PyInstaller bundle on a machine that has nothing but the bundle: the smoke test CI runs on it.

Opt-in, because building takes minutes: `HEARTH_BUILD_BUNDLE=1` builds `dist/hearth/` (via packaging/build.py)
unless it is newer than every source file, and `HEARTH_BUNDLE_DIR=/path/to/hearth` tests an existing bundle
(say, one unpacked from the release tarball) without building. Otherwise every test here is skipped.

"Nothing but the bundle" is approximated by running the executable with a bare environment: no venv on
PATH, no PYTHONPATH, HOME and TMPDIR in the test's tmp dir, and, where the kernel allows an unprivileged
network namespace, no network at all. Each test then checks that nothing was written under HOME (where
~/.cache, ~/.config and ~/.local would be): the app keeps to HEARTH_HOME.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pydoc
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "desktop",
    ROOT / "storage",
    ROOT / "personalize",
    ROOT / "packaging",
    ROOT / "pyproject.toml",
]
EXE_NAME = "hearth.exe" if sys.platform == "win32" else "hearth"
PASSPHRASE = "bundle smoke test passphrase"
# Hang protection only (not a timing assertion): the slowest step, one minute of training, fits well inside.
TIMEOUT_S = 900

pytestmark = pytest.mark.slow


def _newest_source_mtime() -> float:
    newest = 0.0
    for root in SOURCES:
        files = (
            [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def _bundle_dir() -> Path:
    """The bundle to test: given, reused when fresh, or built now. Skips the module when not asked for."""
    given = os.environ.get("HEARTH_BUNDLE_DIR")
    if given:
        return Path(given).resolve()
    if os.environ.get("HEARTH_BUILD_BUNDLE") != "1":
        pytest.skip("bundle smoke test: set HEARTH_BUILD_BUNDLE=1 to build and test it (minutes), "
                    "or HEARTH_BUNDLE_DIR to test a built bundle")  # fmt: skip
    bundle = ROOT / "dist" / "hearth"
    exe = bundle / EXE_NAME
    if not exe.is_file() or exe.stat().st_mtime < _newest_source_mtime():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--no-archive"], check=True, cwd=ROOT)
    return bundle


@pytest.fixture(scope="module")
def bundle() -> Path:
    path = _bundle_dir()
    assert (path / EXE_NAME).is_file(), f"no {EXE_NAME} in {path}"
    return path


def _network_isolation() -> list[str]:
    """`unshare -rn` (a private network namespace with only loopback) where the kernel allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


@dataclass
class Frozen:
    """Runs the bundle's executable in a bare environment whose every writable place is under tmp_path."""

    exe: Path
    tmp: Path
    prefix: list[str]

    @property
    def home(self) -> Path:
        return self.tmp / "user-home"

    @property
    def data(self) -> Path:
        # Not the `hearth_home` fixture's folder: its cache already holds the converted embedder, and the
        # bundle must convert its own on first use.
        return self.tmp / "frozen-hearth-home"

    def env(self) -> dict[str, str]:
        for folder in (self.home, self.tmp / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp / "tmp"),
            "LANG": "C.UTF-8",
            "HEARTH_HOME": str(self.data),
            "HEARTH_PASSPHRASE": PASSPHRASE,
            "HEARTH_KEYRING": "0",
            "QT_QPA_PLATFORM": "offscreen",
            "OMP_NUM_THREADS": "2",
        }

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, str(self.exe), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=cwd or self.tmp,
            timeout=TIMEOUT_S,
        )

    def files_outside_data_dir(self) -> list[str]:
        """Everything written under HOME (which is where ~/.cache, ~/.config, ~/.local would go)."""
        return sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*") if p.is_file())


@pytest.fixture
def frozen(bundle: Path, tmp_path: Path) -> Iterator[Frozen]:
    runner = Frozen(bundle / EXE_NAME, tmp_path, _network_isolation())
    yield runner


def test_doctor_finds_bundled_models_and_every_dependency(frozen: Frozen, bundle: Path) -> None:
    result = frozen("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    missing = [name for name, version in report["versions"].items() if version == "not installed"]
    assert not missing, f"the bundle lacks (or lacks metadata for): {missing}"
    assert str(bundle.resolve()) in json.dumps(report), "doctor should report the model inside the bundle"
    assert report["core_dumps"] == "disabled"  # packaging/hearth_entry.py hardens the frozen process first
    assert frozen.files_outside_data_dir() == []


def test_frozen_ask_answers_offline(frozen: Frozen, plain_answer) -> None:  # type: ignore[no-untyped-def]
    question = "What is the capital of France?"
    result = frozen("ask", "--json", "--temperature", "0", "--max-tokens", "32", question)
    assert result.returncode == 0, result.stderr
    # The bundle's llama.cpp and measured framing give exactly what plain llama.cpp gives in this venv.
    answer = json.loads(result.stdout)["answer"]
    assert answer.strip() and answer == plain_answer(question, 32)
    history = frozen("history", "--json")
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == 1
    assert frozen.files_outside_data_dir() == []


def test_frozen_module_runner_sees_bundled_embedder(frozen: Frozen) -> None:
    """`hearth -m MODULE` (how background jobs start) runs bundled code; the embedder loads from inside."""
    result = frozen("-m", "desktop.frozen")
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["frozen"] is True
    inside = str(Path(probe["bundle_dir"]))
    assert probe["chat_model"].startswith(inside) and probe["embedder_dir"].startswith(inside)
    assert probe["embedding_dim"] == 384
    assert probe["embedder_backend"] == ("openvino" if importlib.util.find_spec("openvino") else "torch")
    assert probe["network_libraries_offline"] is True
    assert frozen.files_outside_data_dir() == []


def test_self_test_opens_window_and_answers(frozen: Frozen) -> None:
    shot = frozen.tmp / "window.png"
    result = frozen("--self-test", "--screenshot", str(shot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert frozen.files_outside_data_dir() == []


def test_frozen_docs_add_embeds_and_searches(frozen: Frozen) -> None:
    """Indexing runs the bundled embedder (OpenVINO, converted on first use); a question finds its note by meaning."""
    added = frozen("add", "--json", str(_write_corpus(frozen.tmp / "notes")))
    assert added.returncode == 0, added.stderr
    docs = frozen("docs", "--json")
    assert docs.returncode == 0, docs.stderr
    listed = json.loads(docs.stdout)
    assert len(listed) == len(CORPUS) and all(d["embedded"] > 0 for d in listed)
    found = frozen("search", "--json", "-k", "1", "how often should I feed the bread culture?")
    assert found.returncode == 0, found.stderr
    assert "sourdough.md" in json.dumps(json.loads(found.stdout)[0])
    assert frozen.files_outside_data_dir() == []


def test_short_personalize_run_trains_in_the_bundle(frozen: Frozen) -> None:
    notes = _write_corpus(frozen.tmp / "notes")
    # Training needs a few thousand words: add real prose, the standard library's own documentation.
    for module in (json, textwrap, shlex):
        (notes / f"{module.__name__}.txt").write_text(pydoc.render_doc(module, renderer=pydoc.plaintext))
    added = frozen("add", str(notes))
    assert added.returncode == 0, added.stderr
    trained = frozen("personalize", "--max-minutes", "1")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    listed = frozen("adapters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1
    # The chat loads whichever adapter is active (from memory, through llama.cpp's C API) and still answers.
    asked = frozen("ask", "--json", "--no-save", "--temperature", "0", "What is the capital of France?")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["answer"].strip()
    # Background training starts `hearth -m personalize.job`: that command line must work frozen.
    job = frozen("-m", "personalize.job", "--help")
    assert job.returncode == 0, job.stderr
    assert "--max-minutes" in job.stdout
    assert frozen.files_outside_data_dir() == []


CORPUS = {
    "sourdough.md": "# Sourdough starter\n\nI feed the starter twice a day with equal weights of rye flour "
    "and water. It doubles in about six hours in a warm kitchen; in winter it lives next to the oven.\n",
    "bicycle.md": "# Bicycle gears\n\nThe rear derailleur needed two quarter turns of the barrel adjuster. "
    "Chain lubed every 300 km; the cassette is an 11-34 and the chainring has 38 teeth.\n",
    "seedlings.md": "# Tomato seedlings\n\nSown on the windowsill in March, pricked out after the first true "
    "leaves, hardened off for a week before planting out once the frosts were over.\n",
}


def _write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (folder / name).write_text(text * 3)
    return folder
