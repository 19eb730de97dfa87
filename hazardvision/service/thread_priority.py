"""Photo scans yield the CPU to camera frames: their threads run at a lower scheduling priority.

A camera must keep its rate while photo scans keep every core busy. Frames have workers of their own
(`frame_workers`), but on a small machine that alone leaves a frame's model run sharing the cores with every
photo run in flight: with two cameras at 5 frames a second and eight photo clients, most frames came late.
Linux gives each thread its own nice value, and a thread inherits its creator's: so the photo workers lower
their own priority (`photo_nice`, default 10: about a tenth of the CPU weight of a thread at 0), and the
onnxruntime session that photo scans run (the one with feature maps) is opened on a thread at that priority, so
that the session's own worker threads are born at it. When a frame and photos both want the CPU the frame gets
it; when no frame is waiting, photo scans have every core as before. Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("hazardvision.service")

T = TypeVar("T")


def lower_this_thread(nice: int) -> None:
    """Add `nice` to the calling thread's nice value (0: leave it); a failure is logged, never raised."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)
    except OSError as error:  # a sandbox may refuse it: photos then share the CPU with frames evenly
        log.warning("could not lower the priority of a photo-scan thread: %s", error)


def at_lower_priority(nice: int, work: Callable[[], T]) -> T:
    """Run `work` on a new thread whose priority is lowered by `nice`, and return its result (or raise its
    error): the threads it starts (an onnxruntime session's) are born at that priority."""
    if nice <= 0:
        return work()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        lower_this_thread(nice)
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the caller, on its own thread
            failure.append(error)

    thread = threading.Thread(target=run, name="hazardvision-photo-session")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
