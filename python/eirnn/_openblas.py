"""OpenBLAS kernels of this CPU's instruction set, chosen before the engine loads OpenBLAS.

Debian's OpenBLAS (0.3.21) falls back to its SSE3 "Prescott" kernels on CPUs newer than it knows,
and reads OPENBLAS_CORETYPE only when it loads. The ``eirnn`` CLI restarts itself with the variable
set in that case; the module cannot restart the interpreter, so before ``eirnn._core`` (and with it
OpenBLAS) is loaded, :func:`choose` asks a short-lived child process which kernels OpenBLAS picks
here and sets the variable the way the CLI does, so that the CLI and the module compute the same
bits; :func:`release` removes it once the library has loaded, so that processes started later
(Slurm jobs on other nodes) choose for their own CPU. Nothing is changed when the variable is
already set, or when this process has already loaded the library (then its choice stands).
"""

from __future__ import annotations

import os
import subprocess
import sys

# The cores of OpenBLAS's DYNAMIC_ARCH builds whose kernels stop short of AVX2 + FMA: the table of
# eirnn::cpu::better_openblas_core (kernels/cpu/blas.cpp), held equal to it by the tests.
BEFORE_AVX2 = frozenset(
    name.lower()
    for name in (
        "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
        "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Steamroller",
        "Barcelona", "Nano", "Sandybridge", "Bobcat", "Bulldozer", "Piledriver",
    )
)

_LIBRARY = "libopenblas.so.0"
_PROBE = (
    "import ctypes\n"
    f"f = ctypes.CDLL({_LIBRARY!r}).openblas_get_corename\n"
    "f.restype = ctypes.c_char_p\n"
    "print(f().decode())\n"
)


def better_core(picked: str, avx512: bool, avx2_fma: bool) -> str | None:
    """The OPENBLAS_CORETYPE to ask for when OpenBLAS picked ``picked``, or None when it stands."""
    if picked.lower() not in BEFORE_AVX2:
        return None
    if avx512:
        return "SkylakeX"
    if avx2_fma:
        return "Haswell"
    return None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _loaded_here() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return any("/libopenblas" in line for line in f)
    except OSError:
        return True  # cannot tell: leave OpenBLAS to itself


def choose() -> str | None:
    """Sets OPENBLAS_CORETYPE as the CLI would and returns it, or returns None, changing nothing."""
    if "OPENBLAS_CORETYPE" in os.environ or _loaded_here():
        return None
    flags = _cpu_flags()
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags
    avx2_fma = {"avx2", "fma"} <= flags
    if not (avx512 or avx2_fma):
        return None
    try:
        probe = subprocess.run(
            [sys.executable, "-S", "-E", "-c", _PROBE], capture_output=True, text=True, timeout=30,
            env={k: v for k, v in os.environ.items() if k != "OPENBLAS_VERBOSE"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if probe.returncode != 0:
        return None
    core = better_core(probe.stdout.strip(), avx512, avx2_fma)
    if core is not None:
        os.environ["OPENBLAS_CORETYPE"] = core
    return core


def release(core: str | None) -> None:
    """Removes the variable :func:`choose` set (``core``, its return value), if it is still that."""
    if core is not None and os.environ.get("OPENBLAS_CORETYPE") == core:
        del os.environ["OPENBLAS_CORETYPE"]
