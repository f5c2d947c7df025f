"""Pin the CPU kernels' instruction set for the whole test run (unit tests and notebook kernels).

A seeded training run is bit-for-bit repeatable on one machine, but PyTorch, oneDNN and MKL pick
their kernels by CPU (AVX2, AVX-512, Intel or AMD paths), and a different kernel moves the last
bits of a float, and then, many steps later, a test image or two. The stored notebook outputs and
``cissl_kit/reference_results`` were made with these settings, so ``pytest --nbval`` compares like
with like where it can. ``STRICT`` asks MKL for results that do not depend on how its arrays
happen to be aligned in memory (an Intel Xeon, pinned without it, trained to other numbers in
nbval's notebook kernels than in a script running the same code; on an AMD EPYC the stored outputs
are the same with and without it). Where a CPU still rounds differently, the training cells print
other numbers, and ``notebooks/conftest.py`` says how they are compared.
Variables already set in the environment win.
"""

import os
import platform

PORTABLE_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2():
    for name, value in PORTABLE_CPU.items():
        os.environ.setdefault(name, value)
