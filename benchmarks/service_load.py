"""Service load: `hazardvision serve` under concurrent clients, against a plain ultralytics loop, same run.

Prepares real photos (../shared/datasets test splits, letterboxed to 1280x720, JPEG) in memory
once. Then, in one run:

1. a plain loop of `ultralytics.YOLO(<pack onnx>).predict` over the same JPEGs (decoded in the
   loop), running every active pack on every photo, for --seconds: the baseline, timed half
   before the service runs and half after them;
2. the service started as a subprocess (temporary home, an inspector key, the bundled packs,
   float32), driven by --clients threads with keep-alive connections posting the photos to
   POST /v1/scans (multipart) for --seconds; then again for each of --batch-configs
   (`off`: HAZARDVISION_MAX_BATCH_SIZE=1; `window5`: HAZARDVISION_BATCH_WINDOW_MS=5;
   `frames-shared`: HAZARDVISION_FRAME_WORKERS=0, camera frames queue with the photos as before
   they had workers of their own; `frames-2`: HAZARDVISION_FRAME_WORKERS=2; `threads-all`: every model run on
   every core, onnxruntime's default and the service's before HAZARDVISION_MODEL_THREADS);
3. during each service run, --cameras threads (a pipeline key) each configure a camera and post
   frames to POST /v1/cameras/{id}/frames at --camera-fps on a fixed schedule: real photos,
   letterboxed to --camera-size (960x540: under the 1280 px at which the packs tile by default),
   each held for a second with fresh sensor noise on every frame, timestamps increasing. Each
   camera sends its newest frame once the last one is answered (the frames made meanwhile are
   dropped, as a live camera's are); a frame counts as analysed when its answer is 200 with
   frame_quality ok within a second of its time. The share is of every frame the camera made.

Prints images/s, p50/p99 latency, errors (must be 0), the mean photos per model run and the
server's peak RSS for each service run, per camera the frames due, sent, answered 200 and
analysed in time with their share, and the ratio service / plain loop. A fresh home has no
similar-case index, so these scans skip the similar-case search (said in the output).

    python benchmarks/service_load.py [--seconds 60] [--clients 8] [--batch-configs off,window5]
        [--cameras 2] [--camera-fps 5] [--camera-size 960x540]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")  # no model-loading chatter among the figures

import cv2
import numpy as np

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.images import load_image
from hazardvision.packs.card import Precision
from hazardvision.packs.letterbox import letterbox
from hazardvision.packs.registry import active_packs

sys.path.insert(0, str(Path(__file__).resolve().parent))  # profile_shares: a script beside this one

from profile_shares import print_shares, record

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAMES = ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")
WIDTH, HEIGHT = 1280, 720
READY_SECONDS = 300
CONFIGS = {
    "default": {},
    "off": {"HAZARDVISION_MAX_BATCH_SIZE": "1"},
    "window5": {"HAZARDVISION_BATCH_WINDOW_MS": "5"},
    "frames-shared": {"HAZARDVISION_FRAME_WORKERS": "0"},
    "frames-2": {"HAZARDVISION_FRAME_WORKERS": "2"},
    "threads-all": {"HAZARDVISION_MODEL_THREADS": str(os.cpu_count() or 1)},
}
"""Environment of each service configuration, on top of the service's defaults."""


def letterboxed_jpegs(count: int) -> list[bytes]:
    """`count` real photos, interleaved across the datasets, letterboxed to WIDTHxHEIGHT, as JPEG bytes."""
    per = [sorted((DATASETS / name / "images" / "test").iterdir()) for name in NAMES]
    photos = [p for group in zip(*per, strict=False) for p in group][:count]
    jpegs = []
    for photo in photos:
        canvas, _ = letterbox(load_image(photo).pixels, HEIGHT, WIDTH, HEIGHT, WIDTH)
        jpegs.append(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return jpegs


def camera_frames(count: int, size: tuple[int, int], fps: int, seed: int) -> list[bytes]:
    """Frames of a camera: `count` real photos letterboxed to `size`, each held for `fps` frames (a second), every
    frame with fresh sensor noise (so the camera is never seen frozen), as JPEG bytes."""
    width, height = size
    per = [sorted((DATASETS / name / "images" / "test").iterdir()) for name in NAMES]
    photos = [p for group in zip(*per, strict=False) for p in group][seed * count:(seed + 1) * count]
    rng = np.random.default_rng(seed)
    frames = []
    for photo in photos:
        canvas, _ = letterbox(load_image(photo).pixels, height, width, height, width)
        for _ in range(fps):
            noisy = np.clip(canvas.astype(np.int16) + rng.normal(0, 3, canvas.shape).astype(np.int16), 0, 255)
            frames.append(cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return frames


class PlainLoop:
    """Decode + every active pack's `YOLO(onnx).predict`, one photo at a time: the baseline."""

    def __init__(self) -> None:
        from ultralytics import YOLO  # noqa: PLC0415  # after YOLO_OFFLINE is set

        packs = active_packs(precision=Precision.FLOAT32)
        self.models = [(YOLO(str(p.model_path), task="detect"), p.detector.info.input_height,
                        p.card.operating_confidence) for p in packs]
        self.described = [f"{p.name} {p.version} ({p.model_path}, imgsz {imgsz}, conf {conf})"
                          for p, (_, imgsz, conf) in zip(packs, self.models, strict=True)]

    def one(self, data: bytes) -> None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        for model, imgsz, conf in self.models:
            model.predict(image, imgsz=imgsz, conf=conf, iou=0.7, verbose=False)

    def images_per_second(self, jpegs: list[bytes], seconds: float) -> float:
        for data in jpegs[:2]:  # warm the sessions up
            self.one(data)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.one(jpegs[done % len(jpegs)])
            done += 1
        return done / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `hazardvision serve` subprocess on loopback with its own home and an inspector key."""

    env: dict[str, str]
    home: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    key: str = ""
    pipeline_key: str = ""

    def start(self, log: Path) -> None:
        bank = SampleBank(self.home)
        self.key = ApiKeys(bank).create("load-benchmark", Role.INSPECTOR)[1]
        self.pipeline_key = ApiKeys(bank).create("load-benchmark-cameras", Role.PIPELINE)[1]
        bank.engine.dispose()
        script = Path(sys.executable).with_name("hazardvision")
        command = [str(script)] if script.exists() else [sys.executable, "-c",
                                                         "from hazardvision.cli import main; main()"]
        # Batching variables of the caller's shell would blur what each configuration measures.
        tuned = {key for config in CONFIGS.values() for key in config}
        env = {**{k: v for k, v in os.environ.items() if k not in tuned}, **self.env}
        with log.open("wb") as sink:
            self.process = subprocess.Popen([*command, "serve", "--home", str(self.home), "--port", str(self.port)],
                                            env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_SECONDS
        while self.get("/readyz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not get ready; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)

    def get(self, path: str) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            # /metrics needs a key (metrics_public is off by default); /readyz takes one too.
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError:
            return 0, ""
        finally:
            connection.close()

    def peak_rss_mib(self) -> float:
        assert self.process is not None
        found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{self.process.pid}/status").read_text())
        return int(found.group(1)) / 1024 if found else float("nan")

    def batches(self) -> tuple[float, float]:
        """(photos, model runs) of scans so far, from /metrics."""
        text = self.get("/metrics")[1]
        found = dict(re.findall(r'hazardvision_inference_batch_size_(sum|count)\{kind="scan"\} ([0-9.e+]+)', text))
        return float(found.get("sum", 0)), float(found.get("count", 0))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def multipart(jpeg: bytes, name: str, tiling: str | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    field_part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"tiling\"\r\n\r\n{tiling}\r\n".encode()
                  if tiling else b"")
    body = field_part + (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                         f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Load:
    """What the clients saw during the timed window."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    cameras: list[CameraLoad] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return len(self.latencies) / self.seconds


LATE_SECONDS = 1.0
"""A frame answered later than this after its time missed the camera's rate."""


@dataclass
class CameraLoad:
    """What one camera saw during the timed window."""

    name: str
    due: int = 0
    sent: int = 0
    answered: int = 0
    analysed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.analysed / self.due if self.due else float("nan")


def camera(server: Server, load: CameraLoad, frames: list[bytes], fps: float, ready: threading.Barrier,
           window: dict[str, float]) -> None:
    """Configure the camera, then post its frames at `fps` on a fixed schedule until the window ends."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    headers = {"Authorization": f"Bearer {server.pipeline_key}"}

    def request(method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        connection.request(method, path, body=body, headers={**headers, "Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()

    status, text = request("PUT", f"/v1/cameras/{load.name}", b"{}", "application/json")
    if status != 200:
        load.errors.append(f"PUT {status} {text[:200]!r}")
    request("POST", f"/v1/cameras/{load.name}/frames?timestamp=0", frames[0], "image/jpeg")  # warm-up
    ready.wait()
    connection.close()  # as the photo clients' (see there)
    start, end = window["end"] - window["seconds"], window["end"]
    load.due = int(window["seconds"] * fps)
    index = 0
    while index < load.due:
        time.sleep(max(0.0, start + index / fps - time.perf_counter()))
        # A live camera sends its newest frame: those made while the last answer was awaited are dropped.
        index = max(index, int((time.perf_counter() - start) * fps))
        due = start + index / fps
        if index >= load.due or due >= end:
            break
        load.sent += 1
        sent = time.perf_counter()
        try:
            status, text = request("POST", f"/v1/cameras/{load.name}/frames?timestamp={1 + index / fps:.3f}",
                                   frames[index % len(frames)], "image/jpeg")
        except (OSError, http.client.HTTPException) as error:
            status, text = 0, repr(error).encode()
            connection.close()
        index += 1
        if status != 200:
            load.errors.append(f"{status} {text[:200]!r}")
            continue
        load.answered += 1
        load.latencies.append(time.perf_counter() - sent)
        if json.loads(text)["frame_quality"]["status"] == "ok" and time.perf_counter() <= due + LATE_SECONDS:
            load.analysed += 1
    connection.close()


def drive(server: Server, bodies: list[tuple[bytes, str]], clients: int, seconds: float,
          cameras: list[list[bytes]] | None = None, fps: float = 5) -> Load:
    """`clients` threads, one keep-alive connection each, posting photos in turn until `seconds` have passed; and
    a thread per camera of `cameras` (its frames) posting frames at `fps` meanwhile."""
    load = Load(seconds, cameras=[CameraLoad(f"cam-{i + 1}") for i in range(len(cameras or []))])
    window: dict[str, float] = {"seconds": seconds}
    # The window opens once every client has warmed up; the barrier's action sets its end before anyone passes.
    ready = threading.Barrier(clients + len(load.cameras) + 1,
                              action=lambda: window.update(end=time.perf_counter() + seconds))

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        headers = {"Authorization": f"Bearer {server.key}"}

        def post(body: bytes, content_type: str) -> tuple[int, bytes]:
            connection.request("POST", "/v1/scans", body=body, headers={**headers, "Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read()

        post(*bodies[index % len(bodies)])  # warm-up, outside the window
        ready.wait()
        connection.close()  # the server may have closed it while others warmed up; the next request reconnects
        sent = index
        while True:
            start = time.perf_counter()
            if start >= window["end"]:
                break
            try:
                status, text = post(*bodies[sent % len(bodies)])
            except (OSError, http.client.HTTPException) as error:
                status, text = 0, repr(error).encode()
                connection.close()
            end = time.perf_counter()
            sent += clients
            if end > window["end"]:
                break  # finished after the window: not counted
            with load.lock:
                if status == 200:
                    load.latencies.append(end - start)
                else:
                    load.errors.append(f"{status} {text[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    threads += [threading.Thread(target=camera, args=(server, seen, frames, fps, ready, window), daemon=True)
                for seen, frames in zip(load.cameras, cameras or [], strict=True)]
    for thread in threads:
        thread.start()
    ready.wait()
    for thread in threads:
        thread.join()
    return load


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_service(name: str, jpegs: list[bytes], clients: int, seconds: float, workdir: Path,
                precision: str = "default", tiling: str | None = None, profile: Path | None = None,
                cameras: list[list[bytes]] | None = None, fps: float = 5) -> Load:
    bodies = [multipart(jpeg, f"photo-{i:03d}.jpg", tiling) for i, jpeg in enumerate(jpegs)]
    env = {**({} if precision == "default" else {"HAZARDVISION_PRECISION": precision}), **CONFIGS[name]}
    server = Server(env, workdir / f"home-{name}")
    try:
        server.start(workdir / f"serve-{name}.log")
        readiness = server.get("/readyz")[1]
        photos_before, runs_before = server.batches()
        assert server.process is not None
        spy = record(server.process.pid, seconds - 2, profile) if profile else None
        load = drive(server, bodies, clients, seconds, cameras, fps)
        photos_after, runs_after = server.batches()
        if spy is not None and spy.wait() != 0:
            print(f"  py-spy failed: {spy.stderr.read().decode()[-500:] if spy.stderr else ''}")
            profile = None
        rss = server.peak_rss_mib()
    finally:
        server.stop()
    runs = runs_after - runs_before
    mean_batch = (photos_after - photos_before) / runs if runs else float("nan")
    settings = " ".join(f"{k}={v}" for k, v in CONFIGS[name].items()) or "service defaults"
    print(f"service [{name}: {settings}]  {clients} clients, {seconds:g} s")
    print(f"  readiness                 {readiness}")
    print(f"  images/s                  {load.images_per_second:8.2f}   ({len(load.latencies)} scans)")
    print(f"  latency p50 / p99         {percentile(load.latencies, 50) * 1000:8.0f} / "
          f"{percentile(load.latencies, 99) * 1000:.0f} ms")
    print(f"  errors                    {len(load.errors):8d}" + (f"   first: {load.errors[0]}" if load.errors else ""))
    print(f"  photos per model run      {mean_batch:8.2f}   (mean, from /metrics)")
    print(f"  server peak RSS           {rss:8.0f} MiB   (VmHWM)")
    for seen in load.cameras:
        print(f"  camera {seen.name:<6} {fps:g} fps   made {seen.due}, sent {seen.sent}, answered 200 {seen.answered}, "
              f"analysed in time {seen.analysed}: {seen.share:.1%}; latency p50 / p99 "
              f"{percentile(seen.latencies, 50) * 1000:.0f} / {percentile(seen.latencies, 99) * 1000:.0f} ms"
              + (f"   errors {len(seen.errors)}, first: {seen.errors[0]}" if seen.errors else ""))
    if profile:
        print(f"  where the server's time goes ({profile}):")
        print_shares(profile, indent="    ")
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of each timed run (default 60)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--precision", default="default", choices=["default", "float32", "int8"],
                        help="precision the service runs (default: each pack's default precision, from its card); "
                        "the plain loop always runs the float32 export")
    parser.add_argument("--tiling", choices=["auto", "on", "off"], help="the scans' tiling field (default: none "
                        "sent, each pack's default; the plain loop never tiles)")
    parser.add_argument("--photos", type=int, default=48, help="distinct photos the clients cycle through")
    parser.add_argument("--batch-configs", default="off,window5",
                        help=f"further service runs after the default one, comma-separated from {sorted(CONFIGS)}; "
                        "'' for none")
    parser.add_argument("--cameras", type=int, default=2, help="cameras posting frames during each service run "
                        "(default 2; 0: none)")
    parser.add_argument("--camera-fps", type=int, default=5, help="frames a second each camera posts (default 5)")
    parser.add_argument("--camera-size", default="960x540", help="WIDTHxHEIGHT of the camera frames (default "
                        "960x540; at 1280 px and more each pack's default tiling costs a model run per tile)")
    parser.add_argument("--profile", type=Path, help="sample the default run's server with py-spy into this file "
                        "and print where its time goes (benchmarks/profile_shares.py)")
    args = parser.parse_args()
    configs = [c for c in args.batch_configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown --batch-configs {sorted(unknown)}; choose from {sorted(CONFIGS)}")
    if not all((DATASETS / name / "images" / "test").is_dir() for name in NAMES):
        raise SystemExit(f"real photos not found: {DATASETS} needs {', '.join(NAMES)}")

    jpegs = letterboxed_jpegs(args.photos)
    width, height = (int(side) for side in args.camera_size.split("x"))
    cameras = [camera_frames(12, (width, height), args.camera_fps, seed) for seed in range(args.cameras)]
    print(f"cpu cores available: {len(os.sched_getaffinity(0))}; photos: {len(jpegs)} real test-split photos "
          f"letterboxed to {WIDTH}x{HEIGHT} JPEG (mean {statistics.mean(map(len, jpegs)) / 1024:.0f} KiB)")
    print("similar cases: off in these runs (a fresh home has no similar-case index); with an index each finding "
          "also gets an embedding search")

    # Half of the baseline before the service runs and half after, so that a drift in the machine's load
    # (a training in the background) weighs on both sides alike.
    loop = PlainLoop()
    before = loop.images_per_second(jpegs, args.seconds / 2)
    results = {}
    with tempfile.TemporaryDirectory(prefix="hv-load-") as workdir:
        for name in ["default", *configs]:
            results[name] = run_service(name, jpegs, args.clients, args.seconds, Path(workdir), args.precision,
                                        args.tiling, args.profile if name == "default" else None, cameras,
                                        args.camera_fps)
    after = loop.images_per_second(jpegs, args.seconds / 2)
    plain = (before + after) / 2
    print(f"plain ultralytics loop  {args.seconds:g} s (half before the service runs, half after), decode + "
          "YOLO(onnx).predict of every pack per photo, one photo at a time")
    for line in loop.described:
        print(f"  {line}")
    print(f"  images/s                  {plain:8.2f}   (before {before:.2f}, after {after:.2f})")

    print("summary")
    print(f"  plain ultralytics loop    {plain:8.2f} images/s")
    for name, load in results.items():
        frames = (f"   frames analysed in time {sum(c.analysed for c in load.cameras)}/"
                  f"{sum(c.due for c in load.cameras)}" if load.cameras else "")
        print(f"  service [{name:<8}]        {load.images_per_second:8.2f} images/s   "
              f"ratio service/plain {load.images_per_second / plain:5.2f}   errors {len(load.errors)}{frames}")
    if any(load.errors or any(c.errors for c in load.cameras) for load in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
