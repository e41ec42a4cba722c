"""fsspec helpers: one place that turns a user's path or URL into a filesystem and a path."""

from __future__ import annotations

import os
import uuid

import fsspec
from fsspec import AbstractFileSystem


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for a local path or URL, and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


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
