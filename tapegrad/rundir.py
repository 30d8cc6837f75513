"""A run directory: which files tapegrad owns in it, and the lock held while a run writes there.

Two rules keep a user's work safe:
- tapegrad writes only into a folder that is new, empty, or already a tapegrad run (its config.json
  was written by tapegrad, or it holds tapegrad's lock file). A folder with anything else in it
  (`--out .` in a project) is refused before a single file is written.
- a run holds an advisory lock (`fcntl.flock` on `.tapegrad.lock` inside the folder) from before
  its first write until the process ends; a second run into the same folder fails at once with an
  error naming the folder. The lock file stays (deleting a flock'ed file invites races); the kernel
  releases the lock when the process exits, however it exits.
"""
from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from .config import UserError

LOCK_NAME = ".tapegrad.lock"
# Every file a run writes (besides temporary `.NAME.*.tmp` files during an atomic write).
RUN_FILES = ("config.json", "model.npz", "metrics.csv", "curves.png", "confusion.png", "graph.dot", "graph.svg")


def short(path: Any, limit: int = 120) -> str:
    """A path for a one-line message: over-long ones are cut in the middle."""
    text = os.fspath(path)
    return text if len(text) <= limit else f"{text[:limit // 2 - 2]}...{text[-(limit // 2 - 1):]}"


def io_message(what: str, path: Any, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{what} {short(path)}: {reason}"


def is_tapegrad_config(path: Path) -> bool:
    """True when `path` is a config.json tapegrad wrote (a JSON object with 'tapegrad_version')."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and "tapegrad_version" in saved


def _ours(name: str) -> bool:
    if name in RUN_FILES or name == LOCK_NAME:
        return True
    return name.startswith(".") and name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RUN_FILES)


def foreign_files(folder: Path) -> list[str]:
    """Names in `folder` that tapegrad did not write (sorted); [] for a new or empty folder.

    A folder counts as a run only by tapegrad's own config.json or lock file: without either, even a
    file named `metrics.csv` is the user's.
    """
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise UserError(f"cannot write to the run directory {short(folder)}: it is a file, not a folder") from None
    is_run = LOCK_NAME in names or ("config.json" in names and is_tapegrad_config(folder / "config.json"))
    if not is_run:
        return names
    return [n for n in names if not _ours(n) or (n == "config.json" and not is_tapegrad_config(folder / n))]


class RunDirBusy(UserError):
    """Another process holds the run directory's lock."""


class RunLock:
    """`flock(LOCK_EX | LOCK_NB)` on `<folder>/.tapegrad.lock`, held until `release()` or exit."""

    def __init__(self, folder: Path, hint: str = "wait for it to finish or choose another --out") -> None:
        self.folder, self.hint = folder, hint
        self.path = folder / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        try:
            handle = open(self.path, "a+")
        except OSError as exc:
            raise UserError(io_message("cannot write to the run directory", self.folder, exc)) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                handle.close()
                raise UserError(io_message("cannot lock the run directory", self.folder, exc)) from None
            holder = _holder_pid(handle)
            handle.close()
            who = f" (pid {holder})" if holder else ""
            raise RunDirBusy(f"{short(self.folder)} is in use by another tapegrad run{who}; {self.hint}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self._handle is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder_pid(handle: IO[str], wait: float = 1.0) -> str:
    """The lock holder's pid, from the lock file. The holder writes it just after taking the lock,
    so a run that lost the race in between finds the file empty (or with a finished run's pid) for
    a moment: it waits, at most `wait` seconds, for the pid of a running process; '' if none comes
    (a lock taken by something other than tapegrad)."""
    deadline = time.monotonic() + wait
    while True:
        handle.seek(0)
        text = handle.read().strip()
        if text.isdigit() and _running(int(text)):
            return text
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.01)


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    return True


def open_new_run(folder: Path) -> RunLock:
    """Check, create and lock the folder of a new run; returns the held lock.

    Refuses a folder holding files tapegrad did not write, or one that already holds a run's
    checkpoint (that is `--resume`'s job), before writing anything into it.
    """
    foreign = foreign_files(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f", ... ({len(foreign)} in all)" if len(foreign) > 5 else "")
        raise UserError(f"--out {short(folder)} holds files tapegrad did not write ({shown}); tapegrad never "
                        "overwrites them: choose a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(io_message("cannot write to the run directory", folder, exc)) from None
    lock = RunLock(folder).acquire()
    if (folder / "model.npz").exists():  # checked under the lock: another run may just have finished
        lock.release()
        raise UserError(f"{short(folder)} already holds a run (model.npz); continue it with --resume "
                        f"{short(folder)} or choose another --out")
    return lock
