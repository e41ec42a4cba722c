"""One writing run per store at a time, and a way to tell a live run from a dead one.

Local folders: an advisory ``flock`` on ``STORE/.run.lock``, held by the process that runs
the flows. The kernel drops it when that process dies, SIGKILL included, so no crash leaves
a stale lock, and a manifest row still "running" while nobody holds the lock belongs to a
run that is gone (it reads as interrupted). Object stores have no locks: there a lease
object ``STORE/.run.lease`` names the owner and carries a heartbeat, refreshed every
``HEARTBEAT_SECONDS`` by a thread; a lease not refreshed for ``LEASE_SECONDS`` is dead.
Two runs that start within a second of each other on an object store can both believe
they won (there is no atomic create there); on local folders the lock is exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from .fs import atomic_write, filesystem, is_local, join, normalise_url

LOCK_NAME = ".run.lock"
LEASE_NAME = ".run.lease"
HEARTBEAT_SECONDS = 5.0
LEASE_SECONDS = 30.0

_held: dict[str, list] = {}  # store url -> [release callable, depth]: re-entrant per process
_guard = threading.Lock()


class StoreBusyError(RuntimeError):
    """Another live run is writing this store."""


class StoreNotWritableError(RuntimeError):
    """The store cannot be written at all (read-only, or a path that is not a folder)."""


def _owner(label: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "label": label,
            "started": datetime.now(UTC).isoformat(timespec="seconds"), "heartbeat": time.time()}


def _describe(owner: dict | None) -> str:
    if not owner:
        return "another process"
    return (f"{owner.get('label', 'a run')} (pid {owner.get('pid')} on {owner.get('host')}, "
            f"since {owner.get('started')})")


@contextlib.contextmanager
def store_run(store_url: str, label: str) -> Iterator[None]:
    """Hold the store's run lock for the block; raises :class:`StoreBusyError` when another
    live run holds it. Re-entrant within one process (the main flow and its stage flows)."""
    store_url = normalise_url(store_url)
    with _guard:
        if store_url in _held:
            _held[store_url][1] += 1
        else:
            release = (_lock_local if is_local(store_url) else _lease_remote)(store_url, label)
            _held[store_url] = [release, 1]
    try:
        yield
    finally:
        with _guard:
            _held[store_url][1] -= 1
            if _held[store_url][1] == 0:
                _held.pop(store_url)[0]()


def run_owner(store_url: str) -> dict | None:
    """Who holds the store's run lock now (pid, host, label, started), or None when no live
    run does. This process's own lock counts as held."""
    store_url = normalise_url(store_url)
    if store_url in _held:
        return _owner("this process")
    return (_local_owner if is_local(store_url) else _remote_owner)(store_url)


# -- local folders: flock ---------------------------------------------------------------------

def _open_lock_file(store_url: str) -> int:
    path = os.path.join(store_url, LOCK_NAME)
    if os.path.exists(store_url) and not os.path.isdir(store_url):
        raise StoreNotWritableError(f"{store_url}: exists and is not a folder")
    try:
        os.makedirs(store_url, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreNotWritableError(f"{store_url}: cannot write the store "
                                    f"({exc.strerror.lower()})") from exc


def _lock_local(store_url: str, label: str):
    import fcntl

    fd = _open_lock_file(store_url)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _read_fd(fd)
        os.close(fd)
        raise StoreBusyError(f"{store_url}: in use by {_describe(owner)}; wait for it to "
                             "end, or use another store") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_owner(label)).encode(), 0)

    def release() -> None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    return release


def _read_fd(fd: int) -> dict | None:
    with contextlib.suppress(ValueError, OSError):
        return json.loads(os.pread(fd, 4096, 0) or b"null")
    return None


def _local_owner(store_url: str) -> dict | None:
    import fcntl

    path = os.path.join(store_url, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_fd(fd) or {}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# -- object stores: a lease with a heartbeat --------------------------------------------------

def _remote_owner(store_url: str) -> dict | None:
    fs, path = filesystem(join(store_url, LEASE_NAME))
    try:
        fs.invalidate_cache(path)
        owner = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None
    fresh = time.time() - float(owner.get("heartbeat", 0)) < LEASE_SECONDS
    return owner if fresh else None


def _lease_remote(store_url: str, label: str):
    fs, path = filesystem(join(store_url, LEASE_NAME))
    if (owner := _remote_owner(store_url)) is not None:
        raise StoreBusyError(f"{store_url}: in use by {_describe(owner)}; wait for it to end, "
                             "or use another store")
    mine = _owner(label)
    atomic_write(fs, path, json.dumps(mine).encode())
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            mine["heartbeat"] = time.time()
            with contextlib.suppress(Exception):  # a missed beat is retried; 6 may be missed
                atomic_write(fs, path, json.dumps(mine).encode())

    thread = threading.Thread(target=beat, name="handlabel-store-lease", daemon=True)
    thread.start()

    def release() -> None:
        stop.set()
        thread.join()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path)

    return release
