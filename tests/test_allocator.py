"""Freed tensor memory is kept for reuse: training-sized blocks come from the heap and stay there (see
undo.runner.allocator)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

SIZE = 16 * 128 * 2439 * 4  # bytes of an embedded-scale logits tensor (batch x sequence x vocabulary, fp32)

# In a fresh process: a block of argv[2] bytes is allocated, as torch's CPU allocator asks glibc for one, then freed;
# glibc's mallinfo2 says how many bytes were mapped for it apart from the heap, and how many free bytes the heap
# holds after.
PROBE = """
import ctypes, json, sys
if sys.argv[1] == "kept":
    from undo.runner.allocator import keep_freed_memory
    assert keep_freed_memory()

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
block = ctypes.c_void_p()
assert libc.posix_memalign(ctypes.byref(block), 64, int(sys.argv[2])) == 0
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(json.dumps({"mapped": mapped, "free_in_heap": libc.mallinfo2().fordblks}))
"""


def probe(mode: str) -> dict:
    command = [sys.executable, "-c", PROBE, mode, str(SIZE)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_freed_logits_sized_block_stays_in_the_heap():
    default, kept = probe("default"), probe("kept")
    assert default["mapped"] >= SIZE and default["free_in_heap"] < SIZE, default  # mapped, then unmapped
    assert kept["mapped"] < SIZE and kept["free_in_heap"] >= SIZE, kept  # from the heap, kept there
