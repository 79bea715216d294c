"""Freed tensor memory is kept for reuse: training-sized tensors come from the heap and stay there (see
undo.allocator)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# In a fresh process: a logits-sized tensor (16 x 128 x 2439 fp32, 20 MB) is allocated, then freed; glibc's
# mallinfo2 says how many bytes were mapped for it apart from the heap, and how many free bytes the heap holds after.
PROBE = """
import ctypes, json, sys
if sys.argv[1] == "kept":
    from undo.allocator import keep_freed_memory
    assert keep_freed_memory()
import torch

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
tensor = torch.ones(16, 128, 2439)
mapped = libc.mallinfo2().hblkhd
del tensor
print(json.dumps({"mapped": mapped, "free_in_heap": libc.mallinfo2().fordblks}))
"""
MB = 2**20


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_freed_logits_tensor_stays_in_the_heap():
    default, kept = probe("default"), probe("kept")
    assert default["mapped"] >= 20 * MB and default["free_in_heap"] < 20 * MB, default  # mapped, then unmapped
    assert kept["mapped"] < 20 * MB and kept["free_in_heap"] >= 20 * MB, kept  # from the heap, kept there
