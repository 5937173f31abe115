"""One writer per run: a lock file held while a run trains (:func:`lshlib.training.run_lock`).

Two processes training one run would both write its checkpoints (one rotating away the folder
the other is writing: ``Parent directory .../checkpoint-76 does not exist``) and its record.
:func:`hold` takes an operating-system lock (``filelock.FileLock``: ``flock`` on Unix) on a
file beside the run's folder and writes the holder's PID and host into it. A second process
waits, saying which PID it waits for, or, given a timeout, stops with :class:`RunLockedError`
naming that PID. The kernel drops the lock of a process that dies, however it dies (SIGKILL
included), so a lock file left behind by a killed process is stale at once and taken over by the
next process; there is nothing to clean up by hand. Light: imports neither torch nor
transformers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import filelock

__all__ = ["RunLockedError", "POLL_SECONDS", "hold", "holder"]

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often a waiting process tries the lock again


class RunLockedError(RuntimeError):
    """Another process holds the lock; the message names its PID."""


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()} {platform.node()}\n".encode())


def holder(path: Path | str) -> str:
    """Who holds (or last held) the lock file ``path``: ``PID <pid> on <host>``."""
    try:
        pid, _, host = Path(path).read_text(encoding="utf-8").strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        pid, host = "", ""
    return f"PID {pid} on {host or 'an unnamed host'}" if pid.isdigit() else "an unknown process"


@contextlib.contextmanager
def hold(path: Path | str, what: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock file ``path`` (created with its folder if missing) while the block runs.

    When another process holds it: wait for it, logging ``<what> is being trained by PID ...``
    (at most ``timeout`` seconds, then :class:`RunLockedError` naming the PID; ``timeout <= 0``
    fails at once; ``None`` waits as long as it takes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, preserve_lock_file=True, on_acquired=_write_holder)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        busy = f"{what} is being trained by {holder(path)} (lock file {path})"
        if timeout is not None and timeout <= 0:
            raise RunLockedError(f"{busy}; wait for it to finish, or stop that process") from None
        log.warning("%s: waiting for it to finish", busy)
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout, poll_interval=POLL_SECONDS)
        except filelock.Timeout:
            raise RunLockedError(
                f"{busy}; still held after {timeout:g} s: wait for it to finish, or stop that "
                "process"
            ) from None
    try:
        yield
    finally:
        lock.release()
