"""Writing videos with PyAV (H.264 by default), to a local file or any fsspec URL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np

from .fs import filesystem


def write_video(url: str, frames: Iterable[np.ndarray], fps: float, codec: str = "libx264"
                ) -> int:
    """Encode RGB frames (H, W, 3, even sizes) at ``fps``; returns the number written."""
    if codec not in av.codecs_available:
        codec = "mpeg4"
    fs, path = filesystem(url)
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(path) or "video.mp4")
        count = 0
        with av.open(local, "w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = "yuv420p"
            for frame in frames:
                if count == 0:
                    stream.height, stream.width = frame.shape[:2]
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        fs.put_file(local, path)
    return count
