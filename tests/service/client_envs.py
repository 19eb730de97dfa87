"""Real third-party clients, each installed from PyPI into a virtual environment of its own and run in a subprocess.

Their dependencies clash with ours (inference-sdk wants the non-headless OpenCV and an older numpy),
so none of them is installed beside hazardvision. An environment is made once and kept under
`HAZARDVISION_TEST_CLIENTS` (default ~/.cache/hazardvision-test-clients/<name>); it is made again
when its requirements change. A client that cannot be installed skips its tests, except under
CI=true, where they fail: CI must drive the real clients.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(os.environ.get("HAZARDVISION_TEST_CLIENTS", Path.home() / ".cache" / "hazardvision-test-clients"))
INSTALL_SECONDS = 900
RUN_SECONDS = 300


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the real clients must run)", pytrace=False)
    pytest.skip(reason)


def client_python(name: str, requirements: Sequence[str]) -> Path:
    """The Python of a virtual environment holding exactly `requirements` (made now if needed)."""
    folder = CACHE / name
    python = folder / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    marker = folder / "requirements.txt"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers may ask for one environment at once
        if python.exists() and marker.is_file() and marker.read_text() == wanted:
            return python
        shutil.rmtree(folder, ignore_errors=True)
        steps = [[sys.executable, "-m", "venv", str(folder)],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_SECONDS, check=False)
            except subprocess.TimeoutExpired:
                unavailable(f"{' '.join(step[:4])}... took over {INSTALL_SECONDS} s")
            if done.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                unavailable(f"cannot install {name} ({' '.join(requirements)}): {done.stderr.strip()[-800:]}")
        marker.write_text(wanted)
    return python


def run_client(python: Path, script: str, arguments: dict[str, Any]) -> Any:
    """Run `script` with the client's Python; it reads its arguments as JSON on stdin and prints its answer as JSON."""
    done = subprocess.run([str(python), "-c", script], input=json.dumps(arguments), capture_output=True, text=True,
                          timeout=RUN_SECONDS, check=False)
    assert done.returncode == 0, f"the client failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
