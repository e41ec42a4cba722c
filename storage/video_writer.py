"""Writing videos with PyAV (H.264 by default), to a local file or any fsspec URL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np

from .fs import filesystem


def write_video(url: str, frames: Iterable[np.ndarray], fps: float, codec: str = "libx264",
                options: dict[str, str] | None = None) -> int:
    """Encode RGB frames (H, W, 3, even sizes) at ``fps``; returns the number written.
    ``options``: the encoder's (x264's preset, for example), used with libx264 only."""
    if codec not in av.codecs_available:
        codec = "mpeg4"
    fs, path = filesystem(url)
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(path) or "video.mp4")
        count = 0
        with av.open(local, "w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = "yuv420p"
            if options and codec == "libx264":
                stream.options = dict(options)
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


def concatenate_videos(parts: list[str], url: str) -> int:
    """Join videos that :func:`write_video` wrote with the same codec, size and rate into one,
    without encoding again: each part's packets are copied after the previous part's, their
    timestamps shifted by its duration (each part starts with a key frame, so the join
    decodes as one stream). Returns the number of packets written."""
    if not parts:
        raise ValueError(f"{url}: no parts to join")
    fs, path = filesystem(url)
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(path) or "video.mp4")
        count, offset = 0, Fraction(0)
        with av.open(local, "w") as container:
            stream = None
            for part in parts:
                part_fs, part_path = filesystem(part)
                with part_fs.open(part_path, "rb") as handle, av.open(handle) as source:
                    video = source.streams.video[0]
                    if stream is None:
                        stream = container.add_stream_from_template(video)
                    shift, end = round(offset / video.time_base), 0
                    for packet in source.demux(video):
                        if packet.dts is None:  # the demuxer's flush packet
                            continue
                        end = max(end, packet.pts + packet.duration)
                        packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                        packet.stream = stream
                        container.mux(packet)
                        count += 1
                    offset += end * video.time_base
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        fs.put_file(local, path)
    return count
