"""The baseline: aiohttp-session-ws 1.1.1 in its own venv under bench/.baseline/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BASELINE_VERSION = "1.1.1"
VENV = Path(__file__).parent / ".baseline" / "venv"
PYTHON = VENV / "bin" / "python"


def _installed() -> bool:
    if not PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(PYTHON), "-s", "-c", "import aiohttp_session_ws as m; print(m.__version__)"],
        capture_output=True,
        text=True,
        cwd=VENV,
        timeout=60,
    )
    return probe.stdout.strip() == BASELINE_VERSION


def ensure_baseline() -> str | None:
    """The baseline's python, creating the venv on first use; None if it cannot be made."""
    if _installed():
        return str(PYTHON)
    print(f"bench: creating {VENV} with aiohttp-session-ws=={BASELINE_VERSION}", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [
                str(PYTHON),
                "-m",
                "pip",
                "install",
                "-q",
                f"aiohttp-session-ws=={BASELINE_VERSION}",
                "aiohttp",
                "aiohttp-session",
            ],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"bench: baseline unavailable: {exc}", file=sys.stderr)
        return None
    return str(PYTHON) if _installed() else None
