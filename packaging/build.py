"""Build the Hearth bundle: PyInstaller with packaging/hearth.spec, then a tarball users can unpack and run.

    python packaging/build.py            # dist/hearth/ and dist/hearth-<version>-<os>-<arch>.tar.gz
    python packaging/build.py --no-archive

The tarball holds `hearth/` (the one-folder bundle), `hearth/hearth.desktop` and `hearth/hearth.png`, and
`hearth/install-desktop-entry.sh`, which registers the menu entry for the current user. It prints the
bundle's size and the build time, which CI logs. Run it with the Python of the environment to bundle
(the project's .venv): PyInstaller bundles the packages that interpreter sees.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "hearth.spec"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
BUNDLE = DIST / "hearth"

INSTALL_ENTRY = """#!/bin/sh
# Register Hearth in the desktop menu of the current user (no root needed). Run from the unpacked folder.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/hearth.png" "$icons/hearth.png"
sed "s|^Exec=.*|Exec=\\"$here/hearth\\"|; s|^TryExec=.*|TryExec=$here/hearth|" "$here/hearth.desktop" \\
    > "$apps/hearth.desktop"
echo "Hearth added to the applications menu ($apps/hearth.desktop)"
"""


def version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    return f"{system}-{platform.machine().lower()}"


def run_pyinstaller(extra_env: dict[str, str]) -> None:
    env = {**os.environ, **extra_env, "HEARTH_VERSION": version()}
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean",
           "--distpath", str(DIST), "--workpath", str(WORK), "--log-level", "WARN"]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def add_desktop_files(bundle: Path) -> None:
    """The .desktop entry, its icon and the script that installs both for the user (Linux menus)."""
    shutil.copy2(PACKAGING / "hearth.desktop", bundle / "hearth.desktop")
    shutil.copy2(PACKAGING / "hearth.png", bundle / "hearth.png")
    script = bundle / "install-desktop-entry.sh"
    script.write_text(INSTALL_ENTRY)
    script.chmod(0o755)


def make_tarball(bundle: Path) -> Path:
    out = DIST / f"hearth-{version()}-{platform_tag()}.tar.gz"
    # compresslevel 6: the bundle is mostly weights and shared libraries; 9 buys ~1% for twice the time.
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname="hearth")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-archive", action="store_true", help="build dist/hearth/ only, no tarball")
    parser.add_argument("--no-torch", action="store_true", help="leave out torch & co (spec iteration)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    run_pyinstaller({"HEARTH_BUNDLE_NO_TORCH": "1"} if args.no_torch else {})
    built = time.monotonic()
    bundle = BUNDLE
    if sys.platform == "darwin" and (DIST / "Hearth.app").exists():
        print(f"macOS app: {DIST / 'Hearth.app'}")
    if sys.platform.startswith("linux"):
        add_desktop_files(bundle)
    print(f"bundle: {bundle} ({folder_size(bundle) / 2**20:.0f} MiB) built in {built - started:.0f} s")
    if not args.no_archive:
        tarball = make_tarball(bundle)
        size = tarball.stat().st_size / 2**20
        print(f"archive: {tarball} ({size:.0f} MiB) in {time.monotonic() - built:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
