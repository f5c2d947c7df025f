"""Process settings made once, when the kit is imported, before PyTorch starts its thread pool.

* **A passive OpenMP wait policy with a short spin** (``OMP_WAIT_POLICY=PASSIVE``, and where the
  OpenMP runtime is GNU's, ``GOMP_SPINCOUNT=3000``). PyTorch's CPU threads otherwise spin for
  milliseconds between parallel regions; on a machine that other work also uses (a classroom
  server, a Colab VM) the spinning threads compete with that work and with each other. Measured
  here (``benchmarks/threads_bench.py``): at a load of 2× the cores, 2 spinning threads made a
  FixMatch step 2.5× slower than 1 thread. A purely passive thread sleeps (futex) at the end of
  every region and is woken at the next: ~5% of a 2-thread run's CPU goes to the kernel. Spinning
  3,000 times first (tens of microseconds) made the quiet step 13–15% faster and halved that
  kernel time, and stays within the loaded target (``benchmarks/wait_policy_bench.py``). The
  policy does not change any result (the same bits). It only takes effect if set before ``torch``
  is first imported: import ``cissl_kit`` first.
* **glibc's allocator keeps freed memory** (``mallopt``: trim and mmap thresholds raised). By
  default glibc hands a training step's freed activations back to the OS and faults them in again
  at the next step: thousands of page faults and milliseconds of kernel time a step. Only where
  glibc is the C library; other platforms are left alone.

``CISSL_KIT_PROCESS_TUNING=0`` in the environment turns both off; an ``OMP_WAIT_POLICY`` or a
``GOMP_SPINCOUNT`` already set wins (and then the kit sets neither).
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
SPIN_COUNT = "3000"  # libgomp's spins before a waiting thread sleeps (its default: 300,000; passive: 0)


def tuning_enabled() -> bool:
    return os.environ.get("CISSL_KIT_PROCESS_TUNING", "1") not in ("0", "")


def configure_process() -> dict[str, bool]:
    """Apply the settings above (idempotent); returns which of them took effect."""
    if not tuning_enabled():
        return {"omp_passive": False, "malloc": False}
    torch_loaded = "torch" in sys.modules  # then its thread pool has read the policy already
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:  # the user's own choice wins
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # (child processes inherit both in any case)
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT  # libgomp: overrides the passive policy's spin count of 0
    omp_passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" and not torch_loaded
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
