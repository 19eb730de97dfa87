"""An RTSP camera for the stream tests: GStreamer's RTSP server, serving H.264 on loopback.

Run with Debian's Python, which has `gi` (the project's virtual environment does not):

    /usr/bin/python3 tests/video/rtsp_server.py FRAMES_OR_VIDEO [--port N] [--mount /cam] [--fps 25]

FRAMES_OR_VIDEO is a folder of JPEG frames named 00000.jpg, 00001.jpg, ... (served in a loop, like a
camera that never stops) or a video file (served once). Port 0 picks a free port. It prints
"ready PORT" once it serves, and stops on SIGTERM or when its standard input says "stop"; the line
"drop" disconnects every client while the server goes on, as a network blip would.
Needs: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402  (after choosing the versions)


def source_of(path: Path, fps: int) -> str:
    """The decoding half of the pipeline, raw video out."""
    if path.is_dir():
        if not (path / "00000.jpg").is_file():
            raise SystemExit(f"{path}: a folder of frames needs 00000.jpg, 00001.jpg, ...")
        return (f'multifilesrc location="{path}/%05d.jpg" index=0 loop=true '
                f'caps="image/jpeg,framerate={fps}/1" ! jpegdec')
    if not path.is_file():
        raise SystemExit(f"{path}: no such folder of frames or video file")
    return f'filesrc location="{path}" ! decodebin'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder of frames (00000.jpg, ...) or a video file")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()

    Gst.init(None)
    # Several slices a frame (zerolatency's sliced threads) as many cameras send, a key frame every second, and
    # the parameter sets once a second; config-interval=-1 (with every key frame) puts them between the slices
    # of a key frame, which FFmpeg then decodes as two broken frames.
    launch = (f"( {source_of(args.source.resolve(), args.fps)} ! videoconvert ! video/x-raw,format=I420 ! "
              f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} ! "
              "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory = GstRtspServer.RTSPMediaFactory.new()
    factory.set_launch(launch)
    factory.set_shared(False)  # each client its own pipeline: its first frame is a key frame, so every frame decodes
    server = GstRtspServer.RTSPServer.new()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot serve RTSP on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()

    def command(_fd: int, condition: GLib.IOCondition) -> bool:
        line = sys.stdin.readline() if condition & GLib.IOCondition.IN else ""
        if line.strip() == "drop":
            server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)
            print("dropped", flush=True)
            return True
        if line == "" or line.strip() == "stop":  # end of input ends the server too: the test is gone
            loop.quit()
            return False
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP,
                      command)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
