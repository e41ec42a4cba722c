"""Content identity of input files: a video is its bytes, not its name."""

from __future__ import annotations

import hashlib

from .fs import filesystem

BLOCK_BYTES = 8 * 1024 * 1024
VIDEO_ID_CHARS = 16


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
