"""The C heap of a long-running service: few arenas, large buffers handed back to the system (glibc).

Decoded photos, letterboxed tensors and onnxruntime's buffers are allocated with the C library's malloc, by
many threads (the server's, the inference and frame workers', onnxruntime's own). With glibc's defaults each
thread may get an arena of its own (up to eight per core), and buffers above the mmap threshold, which glibc
raises after each such buffer is freed (up to 32 MiB), end up inside those arenas: memory freed there stays
in the process, split among the arenas, and a service under photo clients and cameras grew by 5.8% in ten
minutes on two cores (`benchmarks/soak.py`). At most two arenas and a fixed threshold of 4 MiB (a decoded
1080p frame is 6 MiB, a batch tensor of eight 416 px photos 16 MiB: those are then mapped for their own use
and unmapped when freed) kept it to 1.2%, at 0.90x the images a second (figures in the README).

`limit_native_heap` applies both through `mallopt`, before the service starts its threads (`hazardvision
serve`); elsewhere than glibc it does nothing. A setting of 0 leaves glibc's default (and its MALLOC_ARENA_MAX
and MALLOC_MMAP_THRESHOLD_ variables) in force.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger("hazardvision.service")

# glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper bound on 64-bit systems (HEAP_MAX_SIZE / 2)


def limit_native_heap(arenas: int, mmap_threshold: int) -> list[str]:
    """Cap glibc's arenas at `arenas` and fix its mmap threshold at `mmap_threshold` bytes (0: leave either);
    returns what was applied, in words (empty elsewhere than glibc, or when glibc refused)."""
    if platform.libc_ver()[0] != "glibc":
        return []
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a static or unusual build: the defaults stay
        return []
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = []
    for parameter, value, words in ((M_ARENA_MAX, arenas, f"at most {arenas} malloc arenas"),
                                    (M_MMAP_THRESHOLD, mmap_threshold,
                                     f"buffers from {mmap_threshold / 2**20:g} MiB mapped apart")):
        if value <= 0:
            continue
        if mallopt(parameter, value) == 1:
            applied.append(words)
        else:
            log.warning("glibc refused mallopt(%d, %d): its default stays", parameter, value)
    return applied
