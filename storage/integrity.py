"""Chunk checksums: what every array of the store is written with, and how a damaged chunk is
found and named.

Every array ends its codec chain with zarr v3's ``crc32c`` codec, so each stored chunk object
carries a CRC-32C of its encoded bytes in its last four bytes, which zarr checks on every
read. Every chunk is written, even one of fill values (zarr's ``write_empty_chunks``, set here
for every array the process opens: the storage layer is the only user of zarr), so a chunk
whose unit is recorded as done must exist: a missing object is damage too. Arrays written
before checksums (no ``crc32c`` in their metadata) are read as before, unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator

import google_crc32c
import numpy as np
import zarr
import zarr.storage
from zarr.codecs import Crc32cCodec, ZstdCodec

# zarr's own default compressor for numeric arrays, then the checksum
DEFAULT_COMPRESSORS = (ZstdCodec(level=0),)
zarr.config.set({"array.write_empty_chunks": True})
_MISMATCH = "checksum do not match"  # zarr's Crc32cCodec error text


class DamagedChunkError(Exception):
    """A stored chunk whose bytes do not match their checksum, or that is missing."""


def array_codecs(serializer: object | None = None,
                 compressors: tuple | None = DEFAULT_COMPRESSORS) -> dict:
    """``serializer`` and ``compressors`` for ``create_array``: the given ones (zarr's
    defaults when not given) followed by the checksum."""
    codecs = {"compressors": [*(compressors or ()), Crc32cCodec()]}
    if serializer is not None:
        codecs["serializer"] = serializer
    return codecs


def has_checksum(array: zarr.Array) -> bool:
    return any(isinstance(codec, Crc32cCodec) for codec in array.metadata.codecs)


def intact(data: bytes) -> bool:
    """Whether a chunk object's last four bytes are the CRC-32C of the rest."""
    if len(data) < 4:
        return False
    return np.uint32(google_crc32c.value(data[:-4])).tobytes() == data[-4:]


def store_root(array: zarr.Array) -> str:
    """The folder or object-store path of the store that holds ``array``."""
    store = array.store
    if isinstance(store, zarr.storage.FsspecStore):
        protocol = store.fs.protocol
        protocol = protocol[0] if isinstance(protocol, tuple | list) else protocol
        return f"{protocol}://{store.path}"
    return str(getattr(store, "root", None) or "STORE")


def chunk_key(array: zarr.Array, index: int) -> str:
    """The store key of chunk ``index`` along the first axis (whole along the others)."""
    return array.metadata.chunk_key_encoding.encode_chunk_key((index,) + (0,) * (array.ndim - 1))


def damage_message(array: zarr.Array, index: int) -> str:
    root = store_root(array)
    return (f"damaged chunk {root}/{array.path}/{chunk_key(array, index)} (its checksum does "
            f"not match): run 'handlabel verify {root} --repair' to redo it from its source")


def checked_read(array: zarr.Array, start: int = 0, stop: int | None = None) -> np.ndarray:
    """``array[start:stop]``; a chunk that fails its checksum raises DamagedChunkError naming
    the first such chunk."""
    try:
        return array[start:stop]
    except ValueError as error:
        if _MISMATCH not in str(error):
            raise
        index = next(_failing_chunks(array, start, stop), None)
        raise DamagedChunkError(damage_message(array, 0 if index is None else index)) from None


def _failing_chunks(array: zarr.Array, start: int, stop: int | None) -> Iterator[int]:
    size = int(array.chunks[0])
    stop = array.shape[0] if stop is None else min(stop, array.shape[0])
    for index in range(start // size, -(-stop // size)):
        try:
            array[index * size : (index + 1) * size]
        except ValueError as error:
            if _MISMATCH in str(error):
                yield index

