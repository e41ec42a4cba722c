"""Hands of a track seen for a few frames only are flagged: most are ghosts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handlabel.storage.hand_table import _short_tracks


def test_a_track_shorter_than_the_minimum_is_flagged_and_longer_ones_are_not():
    # track 0: 10 frames; track 1: 5 frames; track 2: 6 frames (at 30 fps: 0.33, 0.17, 0.2 s)
    table = pd.DataFrame({"frame": np.r_[0:10, 3:8, 20:26],
                          "track": np.r_[[0] * 10, [1] * 5, [2] * 6]})
    times = np.arange(40) / 30.0
    short = _short_tracks(table, times, 0.2)
    assert not short[:10].any() and short[10:15].all() and not short[15:].any()
    assert not _short_tracks(table, times, 0.0).any()  # 0: nothing flagged
    assert not _short_tracks(table.drop(columns="track"), times, 0.2).any()  # old labels
