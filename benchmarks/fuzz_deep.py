"""Deep fuzz: the suite's schemathesis fuzz (tests/service/fuzzing.py) with many more examples per operation.

Starts the suite's fuzz server (a live uvicorn server on loopback serving the bundled `site` pack, a key of each
role) and sends up to --examples schema-valid and as many schema-violating cases to every operation of its
OpenAPI schema, with the key of each of --roles, in each of --modes: the same checks as the suite (no 5xx, every
answer as documented, errors as JSON). Prints per role and mode the operations, the failing ones and the time;
exits 1 on any failure. The suite runs 50 examples (tests/service/test_fuzz_<role>.py); issue 15 asks for 500.

    python benchmarks/fuzz_deep.py [--examples 500] [--roles inspector,pipeline,ml,admin]
                                   [--modes positive,negative]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's fuzz module: tests/service/fuzzing.py

from schemathesis import GenerationMode

from hazardvision.access import Role
from tests.service.fuzzing import fuzz_failures, fuzz_server


class Folders:
    """New folders under one root, as pytest's `tmp_path_factory.mktemp` makes them (what `fuzz_server` takes)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=500, help="cases per operation, role and mode")
    parser.add_argument("--roles", default=",".join(role.value for role in Role),
                        help="comma-separated roles whose keys send the cases (default: every role)")
    parser.add_argument("--modes", default=",".join(mode.value for mode in GenerationMode),
                        help="comma-separated generation modes (default: positive,negative)")
    args = parser.parse_args()
    roles = [Role(value) for value in args.roles.split(",") if value]
    modes = [GenerationMode(value) for value in args.modes.split(",") if value]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="hv-fuzz-") as workdir, \
            fuzz_server(Folders(Path(workdir))) as server:  # type: ignore[arg-type]  # a mktemp() is all it uses
        print(f"fuzz server {server.url}; up to {args.examples} cases per operation, role and mode")
        for role in roles:
            for mode in modes:
                start = time.perf_counter()

                def progress(label: str, passed: bool, role: Role = role, mode: GenerationMode = mode,
                             start: float = start) -> None:
                    print(f"  {role.value} {mode.value} {time.perf_counter() - start:6.0f} s  "
                          f"{'ok  ' if passed else 'FAIL'} {label}", flush=True)

                operations, failures = fuzz_failures(server, role, mode, args.examples, progress)
                failed += len(failures)
                print(f"{role.value:<9} {mode.value:<8} operations {len(operations):3d}  failing {len(failures):3d}  "
                      f"{time.perf_counter() - start:6.0f} s", flush=True)
                for failure in failures:
                    print(f"    {failure[:2000]}")
    print(f"summary: {len(roles)} roles x {len(modes)} modes, {failed} failing operation runs")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
