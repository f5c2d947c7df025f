"""The declared dependency floor, tested: build an environment with every direct requirement of
``pyproject.toml`` (the ``dev`` extra included) at the lowest version its bound allows for which a wheel
exists for this Python, install the kit into it, and run the unit tests there.

    pip install uv   # the resolver with "lowest-direct" resolution
    python benchmarks/compat.py [--dir /tmp/cissl-compat] [--python 3.11] [-- PYTEST ARGS]

Prints the versions it resolved and pytest's summary line; exits with pytest's code. Not part of CI:
it downloads PyTorch at its floor (with its CUDA libraries on Linux, about 3 GB) and takes minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib", "seaborn", "ipywidgets", "jupyterlab",
         "tqdm", "mlxtend", "otter-grader", "pandas", "pytest", "nbval", "sphinx", "myst-nb")


def _run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cissl-compat"), help="where the environment is built")
    parser.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}",
                        help="the Python version of the environment (default: this one's)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (default: the unit tests)")
    args = parser.parse_args(argv)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        parser.error("needs uv for its lowest-version resolution: pip install uv")
    venv, lock = args.dir / "venv", args.dir / "lowest.txt"
    args.dir.mkdir(parents=True, exist_ok=True)
    # --seed: pip and setuptools, as ``python -m venv`` gives them (torch 2.1's compiler imports pkg_resources)
    _run(uv, "venv", "-q", "--seed", "--allow-existing", "-p", args.python, str(venv))
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    # every direct requirement at its lowest version with a wheel for this Python (--no-build: nothing compiled)
    _run(uv, "pip", "compile", "-q", "--resolution", "lowest-direct", "--no-build", "-p", args.python,
         str(ROOT / "pyproject.toml"), "--extra", "dev", "-o", str(lock), env=env)
    _run(uv, "pip", "install", "-q", "--no-build", "-r", str(lock), env=env)
    _run(uv, "pip", "install", "-q", "--no-deps", "-e", str(ROOT), env=env)
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#"))
    print("resolved:", ", ".join(f"{name} {pins[name]}" for name in SHOWN if name in pins), flush=True)
    tests = args.pytest_args or ["tests", "-m", "not browser and not cuda", "-q", "-p", "no:cacheprovider",
                                 "--durations=10", "-o", "addopts="]
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", *tests], cwd=ROOT, env=env)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
