"""The bundle's entry point: the `hearth` executable runs exactly what the installed `hearth` script runs.

Core dumps are disabled first (`storage.hardening`). Two things only a frozen app needs, done before the CLI
is imported:
- `desktop.frozen.configure()` points Hearth at the bundled models and keeps it offline;
- `hearth -m MODULE ARGS...` runs a module, like `python -m`. Background jobs (training, indexing) start
  themselves as `[sys.executable, "-m", "personalize.worker", ...]`; in a bundle `sys.executable` is this
  program, so this keeps that one command line working frozen and unfrozen. `multiprocessing.freeze_support()`
  does the same for `multiprocessing` children.
"""

import multiprocessing
import runpy
import sys


def _run() -> int:
    from storage.hardening import disable_core_dumps

    disable_core_dumps()  # first: nothing this process holds may reach a core dump
    if getattr(sys, "frozen", False):
        from desktop.frozen import configure

        configure()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        sys.modules.pop(module, None)  # desktop.frozen is imported above; run a fresh copy as __main__
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from desktop.cli import main

    return main()


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(_run())
