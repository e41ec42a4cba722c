"""The labels' self-check: spans hidden from the fit are predicted by it, never seen by it,
and the spans are chosen inside tracks, seeded, apart."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
import roma
import torch

from handlabel.config import FitConfig
from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.fit import selfcheck
from handlabel.models.fit.gaps import bridge
from handlabel.models.fit.selfcheck import (
    HeldOut,
    held_out_spans,
    hidden_errors,
    interpolation_errors,
)
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.window import (
    WindowArrays,
    solve_window,
    window_evidence,
    without_frames,
)
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.synthetic_motion import synthetic_sequence

NOISE = DetectionNoise.gaussian(0.03, 0.8)
SHIFT_PX = 60.0  # a confident mistake on the hidden frames


def window_of(seq) -> WindowArrays:
    frames = len(seq.times)
    return WindowArrays(keypoints=seq.keypoints, weights=seq.confidence**2, world=seq.teacher,
                        world_confidence=seq.teacher_confidence, present=seq.present,
                        mirrored=np.zeros(frames, bool), times=seq.times, K=seq.K)


def test_a_hidden_span_is_predicted_by_the_fit_and_never_seen_by_it():
    """The hidden frames' detections moved 60 px (a confident mistake) change nothing in
    the self-check's fit, which carries the hand across the span closer to the truth than a
    straight line between the detections either side would."""
    hand = DefaultHandModel()
    seq = synthetic_sequence(hand, NOISE, 48, seed=3, dropout=0.0)
    span = HeldOut(slot=0, window_start=0, window_stop=48, hidden_start=20, hidden_stop=30)
    hidden = np.zeros(48, bool)
    hidden[20:30] = True
    projected = {}
    for shift in (0.0, SHIFT_PX):
        arrays = window_of(seq)
        arrays.keypoints = arrays.keypoints.copy()
        arrays.keypoints[hidden] += shift
        solved = solve_window(hand, window_evidence(without_frames(arrays, hidden)),
                              model_limit_frames(hand), FitWeights(), 150,
                              FitConfig().learning_rate)
        assert solved is not None
        projected[shift] = solved[0].projected.detach().numpy()
    np.testing.assert_allclose(projected[SHIFT_PX], projected[0.0], atol=1e-3,
                               err_msg="the fit saw the hidden detections")
    weights = arrays.weights[hidden]
    fitted = projected[SHIFT_PX][hidden]
    to_truth = hidden_errors(fitted, seq.joints_2d[hidden], weights)
    straight_truth = interpolation_errors(seq.joints_2d, arrays.weights, arrays.times, span, 0)
    assert np.median(to_truth) < np.median(straight_truth)
    to_shifted = hidden_errors(fitted, arrays.keypoints[hidden], weights)
    assert np.median(to_shifted) > np.median(to_truth) + 0.5 * SHIFT_PX
    straight = interpolation_errors(arrays.keypoints, arrays.weights, arrays.times, span, 0)
    assert straight.shape == (10,) and np.median(straight) > 0.5 * SHIFT_PX


def test_unseen_frames_stay_on_the_bridge_between_the_seen_ones():
    """With no data term on 12 hidden frames, the fit's solution there is the bridge over
    the seen frames either side (rotations slerped, depth on the cubic that keeps the ends'
    velocities), not wherever Adam's steps would walk it: on the coffee clip they walked a
    hidden hand 0.8 m away in depth (models/fit/gaps.py)."""
    hand = DefaultHandModel()
    seq = synthetic_sequence(hand, NOISE, 40, seed=5, dropout=0.0)
    hidden = np.zeros(40, bool)
    hidden[14:26] = True
    evidence = window_evidence(without_frames(window_of(seq), hidden))
    solved = solve_window(hand, evidence, model_limit_frames(hand), FitWeights(), 120,
                          FitConfig().learning_rate, carry="cubic")
    assert solved is not None
    p = solved[0].parameters
    over = bridge(torch.as_tensor(~hidden), evidence.obs.times)
    log_depth = p.anchor[:, 2].log()
    torch.testing.assert_close(log_depth[hidden], over.cubic(log_depth)[hidden], atol=1e-5,
                               rtol=0)
    orient = over.rotations(p.global_orient)
    assert roma.rotvec_geodesic_distance(orient[hidden], p.global_orient[hidden]).max() < 1e-4
    seen_steps = log_depth[~hidden].diff().abs().max()
    assert log_depth[hidden].diff().abs().max() <= 2 * seen_steps, "no jump inside the span"


def test_hiding_takes_away_every_kind_of_evidence_on_the_hidden_frames_only():
    seq = synthetic_sequence(DefaultHandModel(), NOISE, 12, seed=1, dropout=0.0)
    arrays = window_of(seq)
    arrays.network = {"scale": np.ones(12, np.float32)}
    hidden = np.zeros(12, bool)
    hidden[4:7] = True
    blind = without_frames(arrays, hidden)
    assert not blind.present[hidden].any() and (blind.weights[hidden] == 0).all()
    assert np.isnan(blind.keypoints[hidden]).all() and np.isnan(blind.world[hidden]).all()
    assert (blind.world_confidence[hidden] == 0).all()
    assert np.isnan(blind.network["scale"][hidden]).all()
    np.testing.assert_array_equal(blind.keypoints[~hidden], arrays.keypoints[~hidden])
    assert blind.present[~hidden].all() and arrays.present[hidden].all(), "input untouched"


def test_spans_lie_inside_tracks_between_detections_and_apart():
    present = np.zeros((200, 2), bool)
    present[10:110, 0] = True
    present[50:60, 0] = False  # a gap: no span may start or end in it
    present[120:200, 1] = True
    tracks = [(0, 10, 110), (1, 120, 200)]
    spans = held_out_spans(tracks, present, 10.0, 6, 0.5, 1.0, seed=4)
    assert 2 <= len(spans) <= 6
    for span in spans:
        start, stop = next((a, b) for s, a, b in tracks if s == span.slot)
        assert start <= span.window_start and span.window_stop <= stop
        assert span.hidden_stop - span.hidden_start == 5
        assert span.hidden_start - span.window_start == 10 == span.window_stop - span.hidden_stop
        assert present[span.hidden_start - 1, span.slot] and present[span.hidden_stop, span.slot]
    for a, b in itertools.pairwise(spans):
        assert a.slot != b.slot or a.window_stop <= b.window_start
    assert held_out_spans(tracks, present, 10.0, 6, 0.5, 1.0, seed=4) == spans
    assert held_out_spans(tracks, present, 10.0, 6, 0.5, 1.0, seed=5) != spans
    assert held_out_spans([(0, 10, 30)], present, 10.0, 6, 0.5, 1.0, seed=4) == [], \
        "a track shorter than a span and its context holds none"


@pytest.mark.parametrize("module", [selfcheck])
def test_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
