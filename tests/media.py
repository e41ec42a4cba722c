"""Generated test clips with known answers: variable frame rate, rotation metadata, truncation."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FIXED_ONE = 1 << 16


def write_clip(path: Path, frames: list[np.ndarray], pts_ms: list[int] | None = None,
               fps: int = 30) -> Path:
    """Encode RGB frames as H.264 in MP4; ``pts_ms`` gives each frame's time in milliseconds."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "10"}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = pts_ms[index] if pts_ms else round(index * 1000 / fps)
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def numbered_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Flat grey frames whose brightness encodes their index (readable after lossy coding)."""
    return [np.full((height, width, 3), 20 + 10 * i, np.uint8) for i in range(n)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images or stacks, dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def frame_index(rgb: np.ndarray) -> int:
    return round((float(rgb.mean()) - 20) / 10)


def set_mp4_rotation(src: Path, dst: Path, degrees_ccw: int) -> Path:
    """Copy an MP4, writing a display matrix that rotates the picture counterclockwise."""
    data = bytearray(src.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    matrix_at = box + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    theta = np.radians(degrees_ccw)
    cos, sin = round(np.cos(theta)), round(np.sin(theta))
    matrix = [cos * FIXED_ONE, -sin * FIXED_ONE, 0, sin * FIXED_ONE, cos * FIXED_ONE, 0, 0, 0,
              1 << 30]
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", *matrix)
    dst.write_bytes(bytes(data))
    return dst


def truncated_copy(src: Path, dst: Path, keep: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
