"""Sequential decoding of real samples and generated clips with known answers."""

from __future__ import annotations

import av
import numpy as np
import pytest

from handlabel.storage.video import VideoDecodeError, iter_chunks, iter_frames, probe_video

from .conftest import GESTURE_AVI, OFFICE_MP4, VFR_PTS_MS
from .media import frame_index


def test_h264_sample_decodes_every_frame_at_30fps(sample):
    info = probe_video(str(OFFICE_MP4))
    assert (info.width, info.height, info.fps, info.declared_frames) == (1280, 720, 30.0, 621)
    times = np.array([t for _, t in iter_frames(str(OFFICE_MP4), max_long_side=160)])
    assert len(times) == 621
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=1e-3)


def test_mjpg_avi_sample_and_its_pixels_match_pyav(sample):
    frames = [rgb for rgb, _ in iter_frames(str(GESTURE_AVI))]
    reference = [f.to_ndarray(format="rgb24") for f in av.open(str(GESTURE_AVI)).decode(video=0)]
    assert len(frames) == 20 and frames[0].shape == (240, 320, 3)
    np.testing.assert_array_equal(frames[7], reference[7])


def test_variable_frame_rate_keeps_each_frames_own_time(clips):
    decoded = list(iter_frames(str(clips["vfr"])))
    assert [frame_index(rgb) for rgb, _ in decoded] == list(range(len(VFR_PTS_MS)))
    np.testing.assert_allclose([t for _, t in decoded], np.array(VFR_PTS_MS) / 1000, atol=1e-3)


def test_rotation_metadata_turns_frames_upright(clips):
    info = probe_video(str(clips["rotated90"]))
    assert (info.rotation, info.width, info.height) == (90, 32, 64)
    rgb, _ = next(iter_frames(str(clips["rotated90"])))
    # the white left half of the coded picture ends at the bottom after a 90 degree CCW turn
    assert rgb.shape == (64, 32, 3)
    assert rgb[40:].mean() > 200 and rgb[:24].mean() < 50
    plain, _ = next(iter_frames(str(clips["pattern"])))
    assert plain.shape == (32, 64, 3) and plain[:, :24].mean() > 200


def test_resize_of_the_long_side_keeps_aspect(sample):
    info = probe_video(str(OFFICE_MP4), max_long_side=320)
    rgb, _ = next(iter_frames(str(OFFICE_MP4), max_long_side=320))
    assert (info.width, info.height) == (320, 180) and rgb.shape == (180, 320, 3)


def test_chunks_cover_all_frames_in_order(clips):
    chunks = [(c.index, c.start, len(c.frames), c.frames.copy()) for c in
              iter_chunks(str(clips["vfr"]), chunk_frames=4)]
    assert [c[:3] for c in chunks] == [(0, 0, 4), (1, 4, 4), (2, 8, 2)]
    indices = [frame_index(f) for c in chunks for f in c[3]]
    assert indices == list(range(len(VFR_PTS_MS)))


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        ("text", "not a video FFmpeg can read"),
        ("empty_file", "the file is empty"),
        ("truncated_mp4", "not a video FFmpeg can read"),
        ("truncated_avi", "truncated: decoded 10 of the 20 frames"),
    ],
)
def test_bad_inputs_raise_an_error_naming_the_file(clips, clip, reason):
    path = str(clips[clip])
    with pytest.raises(VideoDecodeError) as error:
        for _ in iter_frames(path):
            pass
    assert str(error.value).startswith(path) and reason in str(error.value)


def test_video_parts_join_in_order_without_encoding_again(tmp_path):
    """Three parts of solid colours, 5, 6 and 7 frames: the joined video has all 18 frames,
    each part's colour where it belongs, times rising evenly, and the parts' packets as
    they were (no second encoding)."""
    from handlabel.storage.video_writer import concatenate_videos, write_video

    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    parts = []
    for index, colour in enumerate(colours):
        parts.append(str(tmp_path / f"part{index}.mp4"))
        write_video(parts[-1], [np.full((64, 96, 3), colour, np.uint8)] * (5 + index), 30.0)
    joined = str(tmp_path / "joined.mp4")
    concatenate_videos(parts, joined)
    with av.open(joined) as container:
        frames = [(f.time, f.to_ndarray(format="rgb24")[32, 48]) for f in container.decode(video=0)]
    expected = [c for i, c in enumerate(colours) for _ in range(5 + i)]
    assert len(frames) == 18
    for (_, pixel), colour in zip(frames, expected, strict=True):
        assert np.abs(pixel.astype(int) - colour).max() <= 4
    assert np.allclose(np.diff([t for t, _ in frames]), 1 / 30, atol=1e-3)
    packets = []
    for path in [*parts, joined]:
        with av.open(path) as container:
            packets.append([bytes(p) for p in container.demux(video=0) if p.size])
    assert packets[-1] == packets[0] + packets[1] + packets[2]
    with pytest.raises(ValueError, match="no parts"):
        concatenate_videos([], joined)
