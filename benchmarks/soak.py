"""Soak: `hazardvision serve` under photo clients and camera pipelines for minutes; errors and memory growth.

Starts the service on a temporary home (an inspector and a pipeline key) and runs, for --minutes:

- --clients threads, each with a keep-alive connection, posting real photos (../shared/datasets test splits)
  to POST /v1/scans one after another;
- --cameras pipelines: each configures its camera (PUT /v1/cameras/{id} with the pipeline key), then sends
  frames to POST /v1/cameras/{id}/frames at 2-5 frames a second (seeded): one real photo with a little
  Gaussian noise per frame (a new JPEG each), timestamps advancing with the frame rate.

A sampler reads the server's VmRSS from /proc/PID/status every --sample-seconds. Prints requests, errors (any
answer other than 2xx, or a broken connection: must be 0), images/s (scans and frames), and the RSS after the
warm-up (--warmup-seconds, default the first minute) against the RSS at the end, with the growth in per cent
(issue 15's target: at most 5%). Exits 1 on any error.

    python benchmarks/soak.py [--minutes 10] [--clients 8] [--cameras 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from crash_rounds import HomeServer, real_photos  # scripts beside this one: its folder is on sys.path
from service_load import DATASETS, NAMES, multipart

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank

FRAME_WIDTH = 960
NOISE_SIGMA = 3.0  # grey levels: a sensor's noise, so that no two frames are the same bytes


@dataclass
class Tally:
    """What the clients and cameras sent and how it went."""

    scans: int = 0
    frames: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(connection: http.client.HTTPConnection, path: str, body: bytes, content_type: str,
         key: str, method: str = "POST") -> tuple[int, bytes]:
    connection.request(method, path, body=body, headers={"Authorization": f"Bearer {key}",
                                                         "Content-Type": content_type})
    response = connection.getresponse()
    return response.status, response.read()


def send(connection: http.client.HTTPConnection, tally: Tally, kind: str, path: str, body: bytes,
         content_type: str, key: str, method: str = "POST") -> http.client.HTTPConnection:
    """One request, counted; the connection to go on with (a new one after a broken one)."""
    try:
        status, text = post(connection, path, body, content_type, key, method)
    except (OSError, http.client.HTTPException) as error:
        status, text = 0, repr(error).encode()
        connection.close()
        connection = http.client.HTTPConnection(connection.host, connection.port, timeout=connection.timeout)
    with tally.lock:
        if kind == "scan":
            tally.scans += 1
        elif kind == "frame":
            tally.frames += 1
        if not 200 <= status < 300:
            tally.errors.append(f"{kind} {path} {status} {text[:200]!r}")
    return connection


def photo_client(server: HomeServer, photos: list[bytes], tally: Tally, end: float, index: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    sent = index
    while time.monotonic() < end:
        body, content_type = multipart(photos[sent % len(photos)], f"soak-{sent}.jpg")
        connection = send(connection, tally, "scan", "/v1/scans", body, content_type, server.key)
        sent += 1
    connection.close()


def camera(server: HomeServer, pipeline_key: str, scene: np.ndarray, tally: Tally, end: float, index: int) -> None:
    """Configure camera `soak-<index>`, then frames of `scene` with noise at a seeded 2-5 fps until `end`."""
    rng = random.Random(index)
    noise = np.random.default_rng(index)
    fps = rng.uniform(2, 5)
    camera_id = f"soak-{index}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection = send(connection, tally, "camera", f"/v1/cameras/{camera_id}", b"{}", "application/json",
                      pipeline_key, method="PUT")
    frame, start = 0, time.monotonic()
    while (now := time.monotonic()) < end:
        due = start + frame / fps
        if due > now:
            time.sleep(due - now)
        noisy = np.clip(scene + noise.normal(0, NOISE_SIGMA, scene.shape), 0, 255).astype(np.uint8)
        jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"timestamp\"\r\n\r\n{frame / fps:.3f}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"frame.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
        connection = send(connection, tally, "frame", f"/v1/cameras/{camera_id}/frames", body,
                          f"multipart/form-data; boundary={boundary}", pipeline_key)
        frame += 1
    connection.close()


def rss_mib(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def scenes(count: int) -> list[np.ndarray]:
    """Real fire-smoke test photos, resized to FRAME_WIDTH wide: what a camera sees."""
    photos = sorted((DATASETS / "fire-smoke" / "images" / "test").iterdir())[:count]
    out = []
    for photo in photos:
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        height = round(image.shape[0] * FRAME_WIDTH / image.shape[1])
        out.append(cv2.resize(image, (FRAME_WIDTH, height), interpolation=cv2.INTER_AREA).astype(np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--photos", type=int, default=48, help="distinct photos the clients cycle through")
    parser.add_argument("--warmup-seconds", type=float, default=60,
                        help="RSS growth is measured from this far in (at most half the run)")
    parser.add_argument("--sample-seconds", type=float, default=5)
    args = parser.parse_args()
    if not all((DATASETS / name / "images" / "test").is_dir() for name in NAMES):
        raise SystemExit(f"real photos not found: {DATASETS} needs {', '.join(NAMES)}")
    seconds = args.minutes * 60
    warmup = min(args.warmup_seconds, seconds / 2)
    photos = real_photos(args.photos)
    frames = scenes(args.cameras)
    print(f"cpu cores available: {len(os.sched_getaffinity(0))}; {args.minutes:g} min, {args.clients} photo "
          f"clients ({len(photos)} real test-split photos), {args.cameras} cameras (fire-smoke test photos "
          f"{FRAME_WIDTH} px wide plus noise, 2-5 fps), RSS every {args.sample_seconds:g} s, warm-up {warmup:g} s")
    tally = Tally()
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="hv-soak-") as workdir:
        home = Path(workdir) / "home"
        bank = SampleBank(home)
        pipeline_key = ApiKeys(bank).create("soak-pipeline", Role.PIPELINE)[1]
        bank.engine.dispose()
        server = HomeServer({}, home)
        server.start(Path(workdir) / "serve.log")
        assert server.process is not None
        pid = server.process.pid
        try:
            start = time.monotonic()
            end = start + seconds
            threads = [threading.Thread(target=photo_client, args=(server, photos, tally, end, i), daemon=True)
                       for i in range(args.clients)]
            threads += [threading.Thread(target=camera, args=(server, pipeline_key, frames[i], tally, end, i),
                                         daemon=True) for i in range(args.cameras)]
            for thread in threads:
                thread.start()
            while (now := time.monotonic()) < end:
                samples.append((now - start, rss_mib(pid)))
                time.sleep(min(args.sample_seconds, max(end - time.monotonic(), 0.01)))
            for thread in threads:
                thread.join(180)
            elapsed = time.monotonic() - start
            samples.append((elapsed, rss_mib(pid)))
            listed = json.loads(server.get("/v1/cameras")[1] or "{}").get("cameras", [])
        finally:
            server.stop()
    after = [rss for at, rss in samples if at >= warmup]
    warm = statistics.median(after[:3])
    final = statistics.median(after[-3:])
    growth = (final - warm) / warm * 100
    print(f"  requests                  {tally.scans} scans, {tally.frames} frames")
    print(f"  images/s                  {(tally.scans + tally.frames) / elapsed:8.2f}   (scans "
          f"{tally.scans / elapsed:.2f}, frames {tally.frames / elapsed:.2f})")
    print("  frames analysed           " + (", ".join(f"{c['camera_id']} {c['frames_analysed']}" for c in listed)
                                             or "no camera listed"))
    first = f"   first: {tally.errors[0]}" if tally.errors else ""
    print(f"  errors                    {len(tally.errors):8d}{first}")
    print(f"  RSS after warm-up         {warm:8.0f} MiB   (median of the 3 samples from {warmup:g} s)")
    print(f"  RSS at the end            {final:8.0f} MiB   (median of the last 3; peak "
          f"{max(rss for _, rss in samples):.0f} MiB)")
    print(f"  growth                    {growth:8.1f} %    (target at most 5%)")
    shown = samples[::max(1, len(samples) // 12)]
    print("  RSS samples (s: MiB)      " + ", ".join(f"{at:.0f}: {rss:.0f}" for at, rss in shown))
    if tally.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
