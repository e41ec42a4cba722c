"""Frame chunks stored as short H.264 segments: a Zarr v3 array-to-bytes codec.

Raw RGB frames compressed losslessly take hundreds of times the bytes of the video they came
from (the sample 720p clip: 331 MB of zstd chunks for a 0.6 MB file). Each chunk of frames
``(N, H, W, 3)`` uint8 is instead encoded, through PyAV's libx264, as one self-contained
Matroska segment that starts on a key frame, so every chunk stays independently readable.
Axes between the first (time) and the image, as the detect stage's per-slot hand crops
``(N, S, h, w, 3)``, are separate streams: each one's N frames are encoded one after the
other, so consecutive frames of one stream are neighbours for the encoder. The
codec is registered with Zarr under ``handlabel.h264`` (here on import, and for any Zarr
reader in the environment through the package's ``zarr.codecs`` entry point), so a reader
opens the frames as any other array and never needs to know which codec wrote them.

Written by hand because no well-kept installable Zarr codec encodes video: imagecodecs'
(JPEG, AVIF, JPEG XL) code each image alone and keep none of the redundancy between frames,
which is where a video's small size comes from. PyAV does the encoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.registry import register_codec

NAME = "handlabel.h264"
ENCODER_THREADS = 2
# x264's macroblock-tree rate control gave different bytes for the same frames from one call
# to the next within a process (measured); without it and adaptive quantisation, output is
# repeatable, so a rerun stores exactly what the first run stored
X264_PARAMS = "mbtree=0:aq-mode=0"


@dataclass(frozen=True)
class H264FrameCodec(ArrayBytesCodec):
    """Encode a chunk of RGB frames as one H.264 segment.

    Args:
        crf: x264's constant rate factor (0 is x264's lossless mode, 18 the default here,
            23 x264's own default).
        preset: x264's speed preset.
        chroma: ``"yuv444p"`` (full colour planes: colour is evidence for the photometric
            losses) or ``"yuv420p"`` (as most source videos; about 10% smaller).

    Chunks must be ``(N, ..., H, W, 3)`` uint8; odd sizes are padded by repeating the last
    row or column for the encoder and cropped back on decoding.
    """

    crf: int = 18
    preset: str = "veryfast"
    chroma: str = "yuv444p"
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict) -> H264FrameCodec:
        return cls(**data.get("configuration", {}))

    def to_dict(self) -> dict:
        return {"name": NAME, "configuration": {"crf": self.crf, "preset": self.preset,
                                                 "chroma": self.chroma}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        if len(shape) < 4 or shape[-1] != 3 or dtype.to_native_dtype() != np.uint8:
            raise ValueError(f"{NAME} stores (frames, ..., height, width, 3) uint8 arrays, "
                             f"not shape {tuple(shape)} of {dtype}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        streams = _as_streams(np.asarray(chunk_array.as_numpy_array()))
        return chunk_spec.prototype.buffer.from_bytes(encode_frames(streams, self))

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        shape = tuple(chunk_spec.shape)
        streams = decode_frames(chunk_bytes.to_bytes(), _streams_shape(shape))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(_from_streams(streams, shape))


def _streams_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(N, S..., H, W, 3) -> (S * N, H, W, 3): every stream's frames in a row."""
    return (int(np.prod(shape[:-3])), *shape[-3:])


def _as_streams(chunk: np.ndarray) -> np.ndarray:
    n, middle, image = chunk.shape[0], chunk.shape[1:-3], chunk.shape[-3:]
    by_stream = chunk.reshape(n, -1, *image).swapaxes(0, 1)
    return by_stream.reshape(-1, *image) if middle else chunk


def _from_streams(frames: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n, image = shape[0], shape[-3:]
    if len(shape) == 4:
        return frames
    return frames.reshape(-1, n, *image).swapaxes(0, 1).reshape(shape)


def _even(frames: np.ndarray) -> np.ndarray:
    pad_y, pad_x = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_y or pad_x):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_y), (0, pad_x), (0, 0)), mode="edge")


def encode_frames(frames: np.ndarray, codec: H264FrameCodec) -> bytes:
    """``(N, H, W, 3)`` uint8 frames as the bytes of one Matroska H.264 segment."""
    frames = _even(np.ascontiguousarray(frames))
    buffer = io.BytesIO()
    # bitexact: no random segment UID or date, so the same frames give the same bytes
    with av.open(buffer, "w", format="matroska", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = codec.chroma
        # x264 picks its thread count from the CPUs it may use, and its output depends on it:
        # fixed, so that the same frames give the same bytes on any machine or worker
        stream.codec_context.thread_count = ENCODER_THREADS
        stream.options = {"crf": str(codec.crf), "preset": codec.preset, "tune": "fastdecode",
                          "x264-params": X264_PARAMS}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index  # in order (PyAV leaves them unset)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_frames(data: bytes, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The frames of one segment, ``shape`` = (N, H, W, 3) as the chunk was written."""
    with av.open(io.BytesIO(data), "r") as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    out = np.stack(frames)[:, : shape[1], : shape[2]]
    if out.shape != shape:
        raise ValueError(f"{NAME}: a chunk decoded to {out.shape}, expected {shape}")
    return out


register_codec(NAME, H264FrameCodec)
