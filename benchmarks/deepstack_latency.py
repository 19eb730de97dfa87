"""DeepStack latency: how long Frigate waits for `hazardvision serve`, against Frigate's 0.1 s default timeout.

Frigate's deepstack detector posts one 320x320 JPEG at a time (a new connection each, `api_key` form
field, no min_confidence) and gives up after `api_timeout` (0.1 s by default). This starts the
service as a subprocess (temporary home, bundled packs), warms it, then sends the same real photos
(../shared/datasets test splits, resized to 320x320 as Frigate's regions are), one request of each
way in turn, so that the machine's noise spreads over all of them:

1. POST /v1/vision/detection with a Frigate profile (record: summary, the fast path: no scan kept,
   no similar-case search, one audit summary a minute);
2. POST /v1/vision/detection with the default profile (each request kept as a scan, audited);
3. POST /v1/scans: the service's own scan, the baseline of the same run;
4. in this process, decoding and every active pack's `ModelPack.detect`: the model's own time,
   which no HTTP path can beat.

Prints p50/p99/max per way, the share over 0.1 s (the frames Frigate would drop), and each way's
p50 as a ratio of the baseline's.

    python benchmarks/deepstack_latency.py [--requests 300] [--photos 40] [--precision int8]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # service_load's Server (a script, not a package)

from service_load import DATASETS, NAMES, Server, multipart, percentile

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.images import decode_image
from hazardvision.packs.card import Precision
from hazardvision.packs.registry import active_packs

FRIGATE_TIMEOUT = 0.1
SIZE = 320
FRIGATE_PROFILE = {"min_confidence": 0.4, "max_predictions": 20, "record": "summary", "summary_seconds": 60}


def frigate_regions(count: int) -> list[bytes]:
    """`count` real photos interleaved across the datasets, resized to 320x320, JPEG at PIL's default quality."""
    per = [sorted((DATASETS / name / "images" / "test").iterdir()) for name in NAMES]
    photos = [p for group in zip(*per, strict=False) for p in group][:count]
    regions = []
    for photo in photos:
        buffer = io.BytesIO()
        Image.open(photo).convert("RGB").resize((SIZE, SIZE)).save(buffer, "JPEG")
        regions.append(buffer.getvalue())
    return regions


def deepstack_form(jpeg: bytes, api_key: str) -> tuple[bytes, str]:
    """Frigate's multipart form: `api_key`, then the file part `image`."""
    boundary = "frigate" + str(time.monotonic_ns())
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n{api_key}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image\"\r\n\r\n").encode()
    return body + jpeg + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def timed_post(port: int, path: str, body: bytes, content_type: str, headers: dict[str, str]) -> float:
    """Seconds from connecting to the parsed answer, on a new connection as `requests.post` makes."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type, **headers})
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"POST {path} answered {response.status}: {answer}")
    return elapsed


class ModelAlone:
    """Decode and every active pack's `detect`, in this process: the model's own time."""

    def __init__(self, precision: Precision | None) -> None:
        self.packs = active_packs(precision)
        for pack in self.packs:
            pack.detect([decode_image(frigate_regions(1)[0]).pixels])  # sessions open

    def __call__(self, jpeg: bytes) -> float:
        start = time.perf_counter()
        image = decode_image(jpeg).pixels
        for pack in self.packs:
            pack.detect([image])
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per way")
    parser.add_argument("--photos", type=int, default=40, help="distinct photos sent, in turn")
    parser.add_argument("--precision", choices=[p.value for p in Precision], default=None,
                        help="run the packs' float32 or int8 models (default: each pack's default)")
    args = parser.parse_args()
    precision = Precision(args.precision) if args.precision else None
    regions = frigate_regions(args.photos)
    env = {"HAZARDVISION_CLIENT_PROFILES": json.dumps({"frigate": FRIGATE_PROFILE})}
    if precision is not None:
        env["HAZARDVISION_PRECISION"] = precision.value
    alone = ModelAlone(precision)
    with tempfile.TemporaryDirectory(prefix="deepstack-latency-") as workdir:
        server = Server(env, Path(workdir) / "home")
        server.start(Path(workdir) / "serve.log")
        try:
            bank = SampleBank(server.home)
            frigate = ApiKeys(bank).create("frigate", Role.PIPELINE)[1]
            kept = ApiKeys(bank).create("deepstack-kept", Role.PIPELINE)[1]
            bank.engine.dispose()
            ways: dict[str, Callable[[bytes], float]] = {
                "deepstack, frigate profile (summary)": lambda jpeg: timed_post(
                    server.port, "/v1/vision/detection", *deepstack_form(jpeg, frigate), {}),
                "deepstack, default profile (scans kept)": lambda jpeg: timed_post(
                    server.port, "/v1/vision/detection", *deepstack_form(jpeg, kept), {}),
                "POST /v1/scans (baseline)": lambda jpeg: timed_post(
                    server.port, "/v1/scans", *multipart(jpeg, "region.jpg"),
                    {"Authorization": f"Bearer {server.key}"}),
                "model alone, in process (floor)": alone,
            }
            for way in ways.values():  # warm: sessions, batchers, the database's connections
                for jpeg in regions[:10]:
                    way(jpeg)
            times: dict[str, list[float]] = {name: [] for name in ways}
            load = os.getloadavg()[0]
            for i in range(args.requests):  # request by request in turn: the machine's noise spreads over the ways
                for name, way in ways.items():
                    times[name].append(way(regions[i % len(regions)]))
        finally:
            server.stop()
    baseline = statistics.median(times["POST /v1/scans (baseline)"])
    print(f"{len(regions)} real photos at {SIZE}x{SIZE}, {args.requests} sequential requests per way, the ways in "
          f"turn, each on a new connection (as Frigate's requests.post); load average {load:.1f} on "
          f"{os.cpu_count()} cores when they began; in-process packs: "
          f"{', '.join(f'{p.name} {p.version} {p.precision.value}' for p in alone.packs)} (the service's too)")
    print(f"{'way':44} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'> 0.1 s':>8} {'p50 / baseline':>15}")
    for name, values in times.items():
        over = sum(v > FRIGATE_TIMEOUT for v in values) / len(values)
        print(f"{name:44} {statistics.median(values) * 1000:7.1f} {percentile(values, 99) * 1000:7.1f} "
              f"{max(values) * 1000:7.1f} {over:8.1%} {statistics.median(values) / baseline:15.2f}")
    print(f"Frigate's default api_timeout is {FRIGATE_TIMEOUT * 1000:.0f} ms; its share over it is the share of "
          "frames Frigate would drop.")


if __name__ == "__main__":
    main()
