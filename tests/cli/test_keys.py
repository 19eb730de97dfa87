"""`hazardvision keys ...` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from hazardvision.access import ApiKeys
from hazardvision.bank.bank import SampleBank
from hazardvision.cli import app
from hazardvision.errors import Unauthenticated

runner = CliRunner(env={"COLUMNS": "200"})  # tables as wide as they need
SCRIPT = Path(sys.executable).with_name("hazardvision")


def keys(*args: str):
    return runner.invoke(app, ["keys", *args])


def test_keys_create_prints_the_key_once(tmp_path):
    done = keys("create", "--role", "pipeline", "--name", "dock3-pipeline", "--home", str(tmp_path))
    assert done.exit_code == 0, done.output
    key = done.stdout.strip()
    assert done.stdout == key + "\n" and key.startswith("hv_")  # alone on stdout, for a script to capture
    assert "cannot be shown again" in done.stderr and key not in done.stderr
    assert ApiKeys(SampleBank(tmp_path)).authenticate(key).name == "dock3-pipeline"

    listed = keys("list", "--home", str(tmp_path))
    as_json = keys("list", "--home", str(tmp_path), "--json")
    audit = runner.invoke(app, ["audit", "list", "--home", str(tmp_path), "--json"])
    for shown in (listed, as_json, audit):
        assert shown.exit_code == 0 and key not in shown.output
    assert f"{key[:8]}..." in listed.stdout
    assert [(k["name"], k["role"], k["prefix"], k["revoked_at"]) for k in json.loads(as_json.stdout)] == [
        ("dock3-pipeline", "pipeline", key[:8], None)]
    assert [r["action"] for r in json.loads(audit.stdout)] == ["key.create"]
    assert json.loads(audit.stdout)[0]["actor"].startswith("cli:")


def test_keys_revoke_refuses_the_key_from_then_on(tmp_path):
    key = keys("create", "--role", "inspector", "--name", "ann", "--home", str(tmp_path)).stdout.strip()
    done = keys("revoke", "ann", "--home", str(tmp_path))
    assert done.exit_code == 0 and "revoked key 'ann'" in done.stdout
    try:
        ApiKeys(SampleBank(tmp_path)).authenticate(key)
    except Unauthenticated as error:
        assert "was revoked" in str(error)
    else:
        raise AssertionError("a revoked key authenticated")
    listed = json.loads(keys("list", "--home", str(tmp_path), "--json").stdout)
    assert listed[0]["revoked_at"] is not None


def test_keys_errors_are_one_clear_line(tmp_path):
    home = str(tmp_path)
    assert keys("create", "--role", "admin", "--name", "root", "--home", home).exit_code == 0
    for args, message in [
        (("create", "--role", "admin", "--name", "root"), "an active key is named 'root'"),
        (("create", "--role", "admin", "--name", "has space"), "a key name is"),
        (("revoke", "nobody"), "no active key 'nobody'"),
    ]:
        done = keys(*args, "--home", home)
        assert done.exit_code == 2 and message in done.stderr, done.output
    wrong_role = keys("create", "--role", "superuser", "--name", "x", "--home", home)
    assert wrong_role.exit_code == 2 and "inspector" in wrong_role.output


def test_keys_through_the_installed_command(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *args, "--home", str(tmp_path)], capture_output=True, text=True,
                              timeout=120, check=False)

    created = run("keys", "create", "--role", "ml", "--name", "ml-bob")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("hv_") and "cannot be shown again" in created.stderr
    assert run("keys", "revoke", "ml-bob").returncode == 0
    verified = run("audit", "verify")
    assert verified.returncode == 0 and "intact: 2 records" in verified.stdout
    assert key.encode() not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
