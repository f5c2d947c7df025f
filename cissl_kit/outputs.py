"""Output folders and files the command line claims before any work: nothing is written into a folder
the kit did not make, no file is replaced that is not a kit checkpoint, two processes never write one
run, and every results file is written whole or not at all.

* A folder the kit makes for a run (``train``) or a grid (``benchmark``) holds a marker file,
  ``.cissl-kit``, saying what it holds (``kind``) and how the run ended (``status``). A folder may be
  reused only if it holds the marker (or is empty, or holds what an older kit wrote there).
* A *claim* is an exclusive ``flock`` on a lock file beside what it protects, held for the life of
  the process (the OS releases it when the process ends, however it ends). A second process asking
  for the same claim is refused at once.
* :func:`write_atomic` writes to a temporary file beside the target and renames it over it.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; claims then only check, they do not lock
    fcntl = None

MARKER = ".cissl-kit"
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


class OutputError(ValueError):
    """An output path that cannot or must not be used (the command exits with 2 before any work)."""


class Claim:
    """An exclusive lock held until :meth:`release` or the end of the process."""

    def __init__(self, lock_path: Path, what: str) -> None:
        self.path = lock_path
        self.handle = None
        try:
            self.handle = open(lock_path, "a+")
        except OSError as error:
            raise OutputError(f"{what}: cannot write there ({error.strerror or error})") from error
        if fcntl is None:
            return
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            self.handle = None
            raise OutputError(f"{what} is in use by another cissl-kit process ({holder}); wait for it to end, or "
                              "choose another path") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.handle.flush()

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def check_folder_name(name: str, flag: str = "--name") -> str:
    """``name`` if it is one plain folder name: not empty, no path separator, not ``.`` or ``..``, at most
    255 bytes."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or (os.altsep and os.altsep in name) \
            or "\0" in name:
        raise OutputError(f"{flag} must be one folder name (no '/', not '.' or '..'), got {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise OutputError(f"{flag} must be at most {NAME_MAX} bytes long, got {len(name.encode())} bytes")
    return name


def read_marker(folder: Path) -> dict | None:
    """The marker of a folder the kit made, or None."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "kind" in marker else None


def write_marker(folder: Path, kind: str, status: str, **extra) -> None:
    write_atomic(folder / MARKER, json.dumps({"kind": kind, "status": status, **extra}, indent=1))


def claim_folder(folder: Path, kind: str, flag: str, legacy: Callable[[Path], bool] = lambda _: False) -> Claim:
    """Create ``folder`` (or reuse one the kit made for a ``kind`` run), mark it, and claim it.

    ``legacy(folder)`` says whether an unmarked folder holds what an older kit wrote for this kind."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{flag} {folder}: cannot create it ({error.strerror or error})") from error
    marker = read_marker(folder)
    if marker is None:
        entries = [p for p in folder.iterdir() if p.name != f"{MARKER}.lock"]
        if entries and not legacy(folder):
            raise OutputError(f"{flag} {folder} already holds files that cissl-kit did not write; it writes only "
                              "into new folders or its own: choose another one")
    elif marker.get("kind") != kind:
        raise OutputError(f"{flag} {folder} holds a cissl-kit {marker.get('kind')} folder, not a {kind} one; choose "
                          "another one")
    claim = Claim(folder / f"{MARKER}.lock", f"{flag} {folder}")
    try:
        probe_writable(folder, flag)
        if marker is None:
            write_marker(folder, kind, "new")
    except BaseException:
        claim.release()
        raise
    return claim


def probe_writable(folder: Path, flag: str) -> None:
    """Prove ``folder`` takes a file (a full disk refuses 64 KiB; an empty file it might not)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cissl-kit-write-test-") as probe:
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise OutputError(f"{flag} {folder}: cannot write there ({error.strerror or error})") from error


def is_regular_file(path: Path) -> bool:
    """True for a regular file (not a folder, device, FIFO or socket), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def claim_file(path: Path, flag: str) -> Claim:
    """Claim the file ``path`` (its lock file is ``.<name>.lock`` beside it)."""
    return Claim(path.with_name(f".{path.name}.lock"), f"{flag} {path}")


def remove_orphans(path: Path) -> None:
    """Remove temporary files ``.<name>.<pid>.tmp`` beside ``path`` left by a process that no longer runs
    (killed while it wrote)."""
    for temporary in path.parent.glob(f".{path.name}.*.tmp"):
        pid = temporary.name[len(path.name) + 2: -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            temporary.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, data: str | bytes | Callable[[Path], None]) -> None:
    """Write ``data`` (text, bytes, or a function that writes a file at the path it is given) to a temporary
    file beside ``path``, then rename it over ``path``: never half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            data(temporary)
        elif isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
