"""Keep freed tensor memory in the process for reuse instead of handing it back to the system.

glibc serves each large allocation (an activation or logits tensor of a few MB at the embedded scale) with a
fresh mmap and unmaps it when freed, so every training step and evaluation batch pays page faults on new memory:
keeping the pages makes training steps and evaluation batches faster on a CPU (`benchmarks/allocator_speed.py`;
the numbers are in docs/performance.md). GPU memory is untouched: PyTorch caches it
already.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

# mallopt(3) parameters and the values used: allocations up to 32 MB (glibc's largest threshold) come from the
# heap, and up to 1 GB freed at its top stays mapped, with 256 MB of headroom added at each growth.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 2**30, M_TOP_PAD: 256 * 2**20}


@cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator for this process, once; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
