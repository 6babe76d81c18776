"""Safe writes: atomic replaces, appends that never touch earlier bytes, locks that never hang, and the checks,
made before a run starts, that the files and folders it will write can be written."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common.errors import UserError

#: How long a run waits for a lock another process holds (seconds); ``HARDNEG_LOCK_TIMEOUT`` overrides it.
LOCK_TIMEOUT_S = 60.0


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename over ``path``.

    A symlink is followed (its target is replaced) and the file keeps its mode (a new one gets the umask's).
    """
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk fails in write(), whose error names no file: name the one being written
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def append_line(path: str | os.PathLike, line: bytes) -> None:
    """Append ``line`` (ending in a newline) with ``O_APPEND``: earlier bytes are never read, moved or rewritten.

    The cost does not grow with the file; symlinks are followed and the mode is kept. When the
    file does not end in a newline (a writer killed mid-line, CR-only line ends), the line
    starts with one, so nothing before it is lost or joined to it. A failed write (full disk)
    is cut back to the old end, so no half line is left; call it under :func:`file_lock`.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        end = os.fstat(fd).st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            line = b"\n" + line
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)


def lock_timeout() -> float:
    """Seconds to wait for a held lock: ``HARDNEG_LOCK_TIMEOUT`` or :data:`LOCK_TIMEOUT_S`."""
    text = os.environ.get("HARDNEG_LOCK_TIMEOUT", "")
    if not text:
        return LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UserError(f"HARDNEG_LOCK_TIMEOUT must be a number of seconds >= 0, got {text!r}")
    return value


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing) while the block runs.

    A lock another process holds is waited for at most :func:`lock_timeout` seconds, saying once
    on stderr what is waited on and who holds it (the holder writes its process id and command
    into the file); then a ``UserError`` names the lock file. ``what``: what the lock guards.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"lock {path} is a folder, not a lock file; remove it (it guards {what})")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise UserError(f"cannot open lock {path} ({err.strerror}); it guards {what}: make its folder writable") from None
    try:
        timeout = lock_timeout()
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UserError(f"cannot lock {path} ({err.strerror}); it guards {what}") from None
            if time.monotonic() >= deadline:
                raise UserError(f"lock {path} is still held after {timeout:g} s ({_holder(fd)}); wait for that run to "
                                f"finish, or delete the lock if no hardneg run uses {what} (HARDNEG_LOCK_TIMEOUT sets the wait)")
            if not told:
                print(f"waiting up to {timeout:g} s for lock {path} on {what} ({_holder(fd)})", file=sys.stderr, flush=True)
                told = True
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(errors="backslashreplace"), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (``pid N: command``)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 500, 0).decode(errors="replace").strip()
        if text:
            return f"held by {text}"
    return "held by another process"


#: Free bytes a run needs where it writes, checked before it starts (a record is a few kB, a cache or checkpoint more).
MIN_FREE_BYTES = 1 << 20


def check_output_file(path: str | os.PathLike, flag: str, example: str = "records.jsonl", *,
                      min_free: int = MIN_FREE_BYTES) -> Path:
    """``path`` when a file can be written there: a regular file or none yet, its nearest existing
    parent a writable folder with ``min_free`` bytes free; ``example`` names a file the hint for a folder suggests.

    Checked before a run starts, so hours of work never end in an ``IsADirectoryError``, a
    full disk, or a write that blocks forever on a FIFO.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file path such as {path / example}")
    if path.exists() and not path.is_file():
        raise UserError(f"{flag} {path} is not a regular file (a FIFO, socket or device); give a file path")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path} is not writable; choose a path you can write to")
    if path.parent.is_dir():  # some folders (/proc, full or read-only mounts) pass the access test and refuse files
        try:
            tempfile.TemporaryFile(dir=path.parent).close()
        except OSError as err:
            raise UserError(f"{flag} {path}: cannot create files there ({err.strerror}); choose another path") from None
    _check_free_space(parent, f"{flag} {path}", min_free)
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` when files can be written into it: a folder (created here) with free space, checked before a run starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise UserError(f"{flag} {path}: cannot create files there ({err.strerror}); choose another folder") from None
    _check_free_space(path, f"{flag} {path}", MIN_FREE_BYTES)
    return path


def _check_free_space(folder: Path, what: str, min_free: int) -> None:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return  # nothing to measure (some virtual file systems): the write itself will tell
    free = stat.f_bavail * stat.f_frsize
    if stat.f_blocks and free < min_free:
        raise UserError(f"{what}: its file system has only {free} bytes free; free some space or choose another path")
