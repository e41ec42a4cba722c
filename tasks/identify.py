"""Identify an input by its content, so renamed copies and reruns map to the same video."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from prefect import task

from handlabel.storage.fs import basename, is_local
from handlabel.storage.hashing import (
    HashCache,
    cached_content_hash,
    video_id_from_hash,
    video_id_from_url,
)
from handlabel.storage.store import DatasetStore

from .retry import retry_transient


@dataclass(frozen=True)
class VideoIdentity:
    url: str
    video_id: str
    content_hash: str | None = None
    size_bytes: int | None = None
    error: str | None = None  # set when the file could not even be read
    hashed: bool = False  # False when an unchanged file's hash came from the store's cache

    @property
    def name(self) -> str:
        return basename(self.url)


_UNREADABLE = {FileNotFoundError: "file not found", IsADirectoryError: "is a folder",
               PermissionError: "permission denied"}


def identify(url: str, store_url: str | None = None) -> VideoIdentity:
    """Hash the file's bytes (or reuse the store's hash of the unchanged file).

    An unreadable input (missing, a folder, no permission, a pipe or device that could block
    forever, any I/O error) gets an identity that carries its error, so it fails in its own
    row and the other videos go on.
    """
    cache = HashCache(store_url) if store_url else None
    try:
        _refuse_special_file(url)
        digest, size, hashed = cached_content_hash(url, cache)
    except OSError as exc:
        reason = next((r for kind, r in _UNREADABLE.items() if isinstance(exc, kind)),
                      exc.strerror or str(exc))
        return VideoIdentity(url, video_id_from_url(url), error=f"{url}: {reason}")
    return VideoIdentity(url, video_id_from_hash(digest), digest, size, hashed=hashed)


def _refuse_special_file(url: str) -> None:
    """A local FIFO, socket or device named like a video would block the hash forever."""
    if not is_local(url) or not os.path.exists(url):
        return
    mode = os.stat(url).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)")


@task(name="identify-video", task_run_name="identify {url}", retries=2,
      retry_condition_fn=retry_transient, retry_delay_seconds=2)
def identify_video(url: str, store_url: str | None = None) -> VideoIdentity:
    return identify(url, store_url)


@task(name="supersede-replaced", retries=2,
      retry_condition_fn=retry_transient, retry_delay_seconds=2)
def supersede_replaced_task(store_url: str, identities: list[VideoIdentity]) -> list[str]:
    """Mark the stored videos whose every source now holds other content as superseded."""
    current = {i.url: i.video_id for i in identities if i.error is None}
    return DatasetStore(store_url).manifest.supersede(current)
