"""Check what the built wheel and sdist contain (`make package-check`, part of `make test`).

Usage: python .ci/check_dist.py DIST_DIR

The wheel must hold the library with its `py.typed` marker and nothing else at the
top level (check-wheel-contents checks the rest). The sdist must hold what the tests
import: the tests are collected inside the unpacked sdist, so a missing module
fails here instead of on a packager's machine.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aiohttp_session_ws"
CHECKOUT = Path(__file__).resolve().parents[1]

# pytest in the unpacked sdist, without the checkout on sys.path (an editable install
# puts it there), so every import must be served from the sdist itself.
COLLECT = """
import os, sys
checkout = os.path.realpath(sys.argv.pop(1))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != checkout]
import pytest
sys.exit(pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def check_wheel(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    problems = []
    if f"{PACKAGE}/py.typed" not in names:
        problems.append(f"{wheel.name}: no {PACKAGE}/py.typed (type checkers would ignore it)")
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    if top != {PACKAGE}:
        problems.append(f"{wheel.name}: top level is {sorted(top)}, expected only {PACKAGE}")
    return problems


def check_sdist(sdist: Path) -> list[str]:
    problems = []
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(sdist) as archive:
        names = archive.getnames()
        junk = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/.venv/" in n]
        if junk:
            problems.append(f"{sdist.name}: build leftovers inside, e.g. {junk[0]}")
        archive.extractall(tmp, filter="data")
        (root,) = Path(tmp).iterdir()
        collected = subprocess.run(
            [sys.executable, "-c", COLLECT, str(CHECKOUT), "--collect-only", "-q"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if collected.returncode != 0:
            tail = "\n".join(collected.stdout.splitlines()[-15:])
            problems.append(f"{sdist.name}: the tests do not collect from the sdist:\n{tail}")
        else:
            print(f"{sdist.name}: {collected.stdout.splitlines()[-1]}")
    return problems


def main(dist: Path) -> int:
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    problems = check_wheel(wheels[0]) + check_sdist(sdists[0])
    for problem in problems:
        print(f"package-check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
