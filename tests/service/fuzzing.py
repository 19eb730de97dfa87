"""Schemathesis fuzzes every operation of the OpenAPI schema against a real server, with a key of each role.

The shared parts of the fuzz: one test module per role (tests/service/test_fuzz_<role>.py), so that pytest-xdist's
`--dist=loadfile` spreads the roles over its workers; each module starts its own server (`fuzz_server`).

Each operation gets up to `EXAMPLES` schema-valid cases and as many schema-violating ones (50 each per operation,
role and mode, as issue 15 asks; fewer where the input space is smaller: /healthz has one). No answer may be a 5xx;
every answer must match what the schema documents for it (status code, content type, body schema); every error
must be JSON with `error` and `message` (on DeepStack's paths: `success` false and `error`). Negative cases include
requests that leave the key out (they must get the documented 401). Hypothesis runs derandomized, so a failure
reproduces with the same command.

The server serves the bundled `site` pack alone (its active version), linked into a temporary folder.

The operations are driven through `APIOperation.as_strategy` rather than `schemathesis.pytest.from_fixture`:
the lazy fixture loader of schemathesis 4.32 fails under pytest 9 (it sets `Function._nodeid`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hazardvision.access import Role
from hazardvision.resources import bundled_path
from tests.service.conftest import LiveServer, live_server

EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
"""Left out: positive_data_acceptance (a schema-valid body of random bytes is rightly refused as not a photo),
response_headers_conformance (no response documents headers), ignored_auth and the stateful checks (auth has its
own tests; every request here carries a valid key on purpose)."""

PACK = "site"
"""The bundled pack the fuzz server serves (ppe and fire-smoke are retired in its favour)."""

MODES = pytest.mark.parametrize("mode", list(GenerationMode), ids=[mode.value for mode in GenerationMode])
"""Each role's test runs once per generation mode (positive, negative)."""


def models_dir(root: Path) -> Path:
    """The bundled `site` pack's active version alone, linked into `root`: activations change `root`, not the repo."""
    source = bundled_path("models") / PACK
    version = (source / "ACTIVE").read_text().strip()
    target = root / PACK / version
    target.mkdir(parents=True)
    for item in (source / version).iterdir():
        (target / item.name).symlink_to(item)
    (root / PACK / "ACTIVE").write_text(f"{version}\n")
    return root


@contextmanager
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server on `models_dir`, for a module-scoped `server` fixture of each fuzz module."""
    models = models_dir(tmp_path_factory.mktemp("fuzz-models"))
    # Every generated POST /v1/session key is a failed sign-in from 127.0.0.1: past the default limit every
    # later request with a key would get 429 (documented, but it would hide what the operations answer).
    with live_server(tmp_path_factory.mktemp("fuzz-home"), models=models,
                     failed_sign_in_limit=1_000_000) as running:
        yield running


def fuzz_operation(operation, mode: GenerationMode, headers: dict[str, str], examples: int = EXAMPLES) -> None:
    """Send up to `examples` cases of one operation; raises on the first answer that fails a check."""

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(mode))
    def run(case) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
        if response.status_code >= 400:
            assert response.headers.get("content-type") == ["application/json"], response.headers
            body = json.loads(response.content)
            if case.path.startswith("/v1/vision/"):  # the DeepStack API answers DeepStack's errors
                assert body["success"] is False and body["error"] and "Traceback" not in body["error"], body
            else:
                assert body["error"] and body["message"] and "Traceback" not in body["message"], body

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE and not any(operation.iter_parameters()) and not operation.body:
            return  # /healthz and the like: no input, and no key to leave out, so nothing can be made invalid
        raise


def fuzz_failures(server: LiveServer, role: Role, mode: GenerationMode, examples: int = EXAMPLES,
                  progress: Callable[[str, bool], None] | None = None) -> tuple[list[str], list[str]]:
    """Fuzz every operation of the server's schema with `role`'s key in `mode`: the operations' labels, and a
    line for each failing one (also run by benchmarks/fuzz_deep.py with more examples, which passes `progress`:
    called after each operation with its label and whether it passed)."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.keys[role]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    failures = []
    for operation in operations:
        failed_before = len(failures)
        try:
            fuzz_operation(operation, mode, headers, examples)
        except (AssertionError, BaseExceptionGroup) as error:  # schemathesis' FailureGroup is the latter
            failures.append(f"{operation.label}: {error}")
        if progress is not None:
            progress(operation.label, len(failures) == failed_before)
    return [operation.label for operation in operations], failures


def fuzz_every_operation(server: LiveServer, role: Role, mode: GenerationMode) -> None:
    """Fuzz every operation of the server's schema with `role`'s key in `mode`; fails listing every failing one."""
    operations, failures = fuzz_failures(server, role, mode)
    assert len(operations) >= 16
    assert not failures, "\n\n".join(failures)
