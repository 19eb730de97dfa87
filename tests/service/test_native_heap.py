"""The service's C heap: few arenas shared by its threads, large buffers mapped apart (glibc)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest

from hazardvision.service.native_heap import limit_native_heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the arenas and threshold are glibc's")

# Run in a fresh interpreter (the limits are process-wide): eight threads malloc at once while each holds its
# buffer, then the arenas are counted in malloc_info; a 6 MiB and a 2 MiB buffer tell the threshold.
PROBE = textwrap.dedent("""
    import ctypes, json, os, sys, tempfile, threading
    from hazardvision.service.native_heap import limit_native_heap

    applied = limit_native_heap(int(sys.argv[1]), int(sys.argv[2]))
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.fopen.restype = ctypes.c_void_p
    barrier = threading.Barrier(9)  # the eight and this thread

    def hold():
        buffer = libc.malloc(4096)
        barrier.wait()  # all eight hold a buffer at once: each wants an arena to itself
        barrier.wait()
        libc.free(buffer)

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    with tempfile.NamedTemporaryFile(suffix=".xml") as info:
        stream = libc.fopen(info.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        heaps = open(info.name).read().count("<heap nr=")
    barrier.wait()
    for thread in threads:
        thread.join()

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
    libc.mallinfo2.restype = Info

    def mapped(size):
        # a freed mapped buffer raises glibc's default threshold above it: then the next one is not mapped
        before = libc.mallinfo2().hblkhd
        buffer = libc.malloc(size)
        grew = libc.mallinfo2().hblkhd >= before + size
        libc.free(buffer)
        return grew

    print(json.dumps({"applied": applied, "heaps": heaps, "large": [mapped(6 << 20), mapped(6 << 20)],
                      "small": mapped(2 << 20)}))
""")


def probe(arenas: int, threshold: int) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(arenas), str(threshold)], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_at_most_two_arenas_and_large_buffers_mapped_apart():
    limited = probe(2, 4 << 20)
    assert limited["applied"] == ["at most 2 malloc arenas", "buffers from 4 MiB mapped apart"]
    assert limited["heaps"] <= 2
    assert limited["large"] == [True, True]  # each time: handed back when freed
    assert limited["small"] is False


def test_zero_leaves_glibc_s_defaults():
    default = probe(0, 0)
    assert default["applied"] == []
    assert default["heaps"] > 2  # threads that malloc at once get arenas of their own
    assert default["large"] == [True, False]  # the threshold rose past the first freed buffer


def test_limits_are_refused_quietly_elsewhere(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert limit_native_heap(2, 4 << 20) == []
