"""fsspec helpers: one place that turns a user's path or URL into a filesystem and a path."""

from __future__ import annotations

import json
import os
import uuid

import fsspec
import fsspec.config
from fsspec import AbstractFileSystem

# Object stores whose fsspec filesystems cache listings: the store is written by several
# processes (the CLI, each Dask worker), so a cached listing or size is soon stale (s3fs then
# fails reads with FileExpired or PreconditionFailed). Listings are always asked afresh.
_LISTING_CACHE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az", "adl"})


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def fresh_listing_options(url: str) -> dict:
    """fsspec options that turn off a filesystem's listing cache, where it has one."""
    return {"use_listings_cache": False} if protocol_of(url) in _LISTING_CACHE_PROTOCOLS else {}


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for a local path or URL, and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url, **fresh_listing_options(url))
    return fs, path


def configure_filesystems(options: dict[str, dict]) -> None:
    """Set fsspec options per protocol (endpoint, credentials, anon) for this process and the
    processes it starts afterwards: fsspec's own configuration, and its ``FSSPEC_<PROTOCOL>``
    variable (JSON), which fsspec reads at import in a new process (a Dask worker)."""
    for protocol, values in options.items():
        fsspec.config.conf.setdefault(protocol, {}).update(values)
        os.environ[f"FSSPEC_{protocol.upper()}"] = json.dumps(fsspec.config.conf[protocol])


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def normalise_url(url: str) -> str:
    """Absolute local path for local inputs; the URL unchanged otherwise."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if is_local(url):
        return os.path.abspath(os.path.expanduser(url))
    return url.rstrip("/")


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def atomic_write(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a whole object so that readers see the old or the new bytes, never a half."""
    parent, name = path.rsplit("/", 1)
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"  # dot-named: readers of the folder skip it
    fs.pipe_file(tmp, data)
    try:
        fs.mv(tmp, path)
    except Exception:
        fs.rm(tmp)
        raise


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
