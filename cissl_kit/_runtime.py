"""Process settings made once, when the kit is imported, before PyTorch starts its thread pool.

* **A passive OpenMP wait policy** (``OMP_WAIT_POLICY=PASSIVE``). PyTorch's CPU threads otherwise
  spin between parallel regions; on a machine that other work also uses (a classroom server, a
  Colab VM) the spinning threads compete with that work and with each other. Measured here
  (``benchmarks/threads_bench.py``): at a load of 2× the cores, 2 spinning threads made a FixMatch
  step 2.5× slower than 1 thread; with the passive policy 2 threads are as fast as 1 under load and
  as fast as before on a quiet machine. The policy does not change any result (the same bits).
  It only takes effect if set before ``torch`` is first imported: import ``cissl_kit`` first.
* **glibc's allocator keeps freed memory** (``mallopt``: trim and mmap thresholds raised). By
  default glibc hands a training step's freed activations back to the OS and faults them in again
  at the next step: thousands of page faults and milliseconds of kernel time a step. Only where
  glibc is the C library; other platforms are left alone.

``CISSL_KIT_PROCESS_TUNING=0`` in the environment turns both off; an ``OMP_WAIT_POLICY`` already
set wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed memory at the top of the heap
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below 32 MiB come from the heap, not from mmap


def tuning_enabled() -> bool:
    return os.environ.get("CISSL_KIT_PROCESS_TUNING", "1") not in ("0", "")


def configure_process() -> dict[str, bool]:
    """Apply the settings above (idempotent); returns which of them took effect."""
    if not tuning_enabled():
        return {"omp_passive": False, "malloc": False}
    torch_loaded = "torch" in sys.modules  # then its thread pool has read the policy already
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # (child processes inherit it in any case)
    omp_passive = os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE" and not torch_loaded
    return {"omp_passive": omp_passive, "malloc": raise_malloc_thresholds()}


_malloc_done = False


def raise_malloc_thresholds() -> bool:
    """Raise glibc's trim and mmap thresholds; False where the C library is not glibc."""
    global _malloc_done
    if _malloc_done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):
        return False
    _malloc_done = done
    return done
