"""`hazardvision serve`: settings from options, a .env file and the environment; JSON request logs."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import REPO

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hazardvision(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "hazardvision", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_serve_runs_with_settings_from_a_file_and_logs_json(tmp_path, datasets):
    home = tmp_path / "home"
    settings = tmp_path / "service.env"
    settings.write_text("HAZARDVISION_SIMILAR_CASES=0\nHAZARDVISION_LOG_LEVEL=INFO\nHAZARDVISION_PORT=1\n")
    port = free_port()
    env = {**os.environ, "HAZARDVISION_INFERENCE_WORKERS": "1"}
    process = hazardvision("serve", "--home", str(home), "--port", str(port), "--env-file", str(settings), env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "hazardvision serve did not become ready"
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"{url}/v1/models").status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    # uvicorn shuts down cleanly, then dies of the signal it caught, as a process should.
    assert process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in stderr, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "hazardvision.service.access"]
    last = requests[-1]
    assert (last["method"], last["path"], last["status"]) == ("GET", "/v1/models", 401)
    assert "ms" in last and "key" in last
    if platform.libc_ver()[0] == "glibc":  # hazardvision.service.native_heap, before the service's threads
        assert {"logger": "hazardvision.service", "level": "info",
                "message": "native heap: at most 2 malloc arenas, buffers from 4 MiB mapped apart"}.items() \
            <= next(line for line in lines if "native heap" in line["message"]).items()
    assert (home / "bank.sqlite3").is_file()


def test_serve_refuses_a_misspelt_setting(tmp_path):
    settings = tmp_path / "service.env"
    settings.write_text("HAZARDVISION_MAX_UPLOAD_BYTE=100\n")
    process = hazardvision("serve", "--home", str(tmp_path), "--env-file", str(settings))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "invalid settings" in stderr and "max_upload_byte" in stderr
