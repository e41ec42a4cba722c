"""Content identity of input files: a video is its bytes, not its name.

Hashing reads every byte, so a scheduled rescan of a large archive would re-read it all. The
store therefore keeps each URL's last hash with the file's fingerprint (size plus modification
time, ETag or checksum, whatever the filesystem reports); an unchanged fingerprint reuses the
hash, a changed one (a file rewritten in place) hashes again.
"""

from __future__ import annotations

import hashlib
import json

from .fs import atomic_write, filesystem, join

BLOCK_BYTES = 8 * 1024 * 1024
VIDEO_ID_CHARS = 16
# fsspec info() keys that change when a file's content changes, by filesystem.
_VERSION_KEYS = ("mtime", "LastModified", "last_modified", "ETag", "etag", "md5Hash", "crc32c",
                 "generation", "version_id")


def content_hash(url: str) -> tuple[str, int]:
    """SHA-256 of the file's bytes (streamed) and its size in bytes."""
    fs, path = filesystem(url)
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def video_id_from_hash(sha256_hex: str) -> str:
    """The store's key of a video: a prefix of its content hash (64 bits)."""
    return sha256_hex[:VIDEO_ID_CHARS]


def video_id_from_url(url: str) -> str:
    """Key for an input that could not be read at all, so its failure still gets a row."""
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[: VIDEO_ID_CHARS - 4]


def file_fingerprint(url: str) -> str | None:
    """Size and version of a file as its filesystem reports them; None if it reports no version."""
    fs, path = filesystem(url)
    info = fs.info(path)
    versions = {k: str(info[k]) for k in _VERSION_KEYS if info.get(k) is not None}
    if not versions:
        return None
    return json.dumps({"size": info.get("size"), **versions}, sort_keys=True)


class HashCache:
    """URL -> (fingerprint, sha256, size), kept in the store under ``hashes/``."""

    def __init__(self, store_url: str):
        self.fs, self.path = filesystem(join(store_url, "hashes"))

    def _entry_path(self, url: str) -> str:
        return f"{self.path}/{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"

    def get(self, url: str, fingerprint: str) -> tuple[str, int] | None:
        path = self._entry_path(url)
        if not self.fs.exists(path):
            return None
        entry = json.loads(self.fs.cat_file(path))
        if entry["url"] != url or entry["fingerprint"] != fingerprint:
            return None
        return entry["sha256"], entry["size"]

    def put(self, url: str, fingerprint: str, sha256: str, size: int) -> None:
        entry = {"url": url, "fingerprint": fingerprint, "sha256": sha256, "size": size}
        atomic_write(self.fs, self._entry_path(url), json.dumps(entry).encode())


def cached_content_hash(url: str, cache: HashCache | None) -> tuple[str, int, bool]:
    """(sha256, size, hashed): the cached hash when the file is unchanged, else a fresh one."""
    fingerprint = file_fingerprint(url) if cache is not None else None
    if fingerprint is not None and (hit := cache.get(url, fingerprint)) is not None:
        return *hit, False
    digest, size = content_hash(url)
    if fingerprint is not None:
        cache.put(url, fingerprint, digest, size)
    return digest, size, True
