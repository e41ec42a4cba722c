"""The view gate on synthetic tracks with known answers: when a hand's views must run again."""

from __future__ import annotations

import numpy as np
import pytest

from handlabel.models.detectors.tta_gate import ViewGate

SIZE = 100.0  # px


def hand_at(x: float, y: float = 200.0) -> np.ndarray:
    """(21, 2) a rigid hand whose joints lie on a line, shifted to (x, y)."""
    return np.column_stack([np.linspace(0, SIZE, 21) + x, np.full(21, y)])


def fresh_frames(gate: ViewGate, tracks: list[list[np.ndarray]]) -> list[list[bool]]:
    """For each frame's hands, whether the gate ran their views."""
    spread = np.linspace(0.01, 0.2, 21)
    ran = []
    for hands in tracks:
        frame = []
        for keypoints in hands:
            memory = gate.carried(keypoints, SIZE)
            frame.append(memory is None)
            gate.remember(keypoints, spread if memory is None else memory.spread,
                          spread, memory)
        gate.next_frame()
        ran.append(frame)
    return ran


def test_a_smoothly_moving_hand_gets_its_views_every_nth_frame():
    frames = [[hand_at(10.0 + 3.0 * t)] for t in range(10)]
    assert [f[0] for f in fresh_frames(ViewGate(every=4, jump=0.3), frames)] == \
        [True, False, False, False, True, False, False, False, True, False]


def test_every_one_runs_the_views_on_every_frame():
    frames = [[hand_at(10.0)] for _ in range(3)]
    assert fresh_frames(ViewGate(every=1, jump=0.3), frames) == [[True]] * 3


def test_a_jump_off_the_constant_velocity_path_runs_the_views_at_once():
    xs = [10.0, 13.0, 16.0, 19.0 + 40.0, 62.0]  # frame 3 leaps 0.4 hand sizes off the path
    fresh = [f[0] for f in fresh_frames(ViewGate(every=8, jump=0.3), [[hand_at(x)] for x in xs])]
    assert fresh == [True, False, False, True, False]


def test_a_new_hand_beside_a_known_one_gets_its_views_and_the_known_one_carries():
    frames = [[hand_at(10.0)], [hand_at(10.0), hand_at(600.0)], [hand_at(10.0), hand_at(600.0)]]
    assert fresh_frames(ViewGate(every=8, jump=0.3), frames) == \
        [[True], [False, True], [False, False]]


def test_a_nonsense_interval_is_refused():
    with pytest.raises(ValueError, match="every must be >= 1"):
        ViewGate(every=0, jump=0.3)
