"""The sequence fit on synthetic sequences with known motion, its terms on known values, and
the conventions around it (views mapped back, mirrored hands, gaps, quality)."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest
import roma
import torch

from handlabel.config import FitConfig, ReconstructConfig
from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.detectors.augment import Augmentation, crop_transform, unrotate_world
from handlabel.models.fit import cuts, placement, quality, solve, terms, track
from handlabel.models.fit.network_trust import network_error, network_trust
from handlabel.models.fit.observe import track_observations
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.solve import fit_track, fit_tracks, length_batches
from handlabel.models.fit.track import solve_track
from handlabel.models.fit.window import network_observations
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.hand.sides import MIRROR
from handlabel.models.keypoints import hand_sizes
from handlabel.models.metrics.keypoints2d import confidence_error_correlation
from handlabel.models.metrics.keypoints3d import procrustes_errors, summarise_3d
from handlabel.models.synthetic_motion import synthetic_sequence
from handlabel.tasks.hand_fit import track_cuts

# a detector profile like the measured one (docs/accuracy.md): errors of a few percent of
# the hand size, confidences that vary per joint
_rng = np.random.default_rng(0)
NOISE = DetectionNoise(np.abs(_rng.normal(0.05, 0.03, (30, 21))),
                       np.clip(_rng.normal(0.7, 0.15, (30, 21)), 0.05, 1.0))


@pytest.fixture(scope="module")
def hand():
    return DefaultHandModel()


DEFAULT_WEIGHTS = FitWeights()


def fit_sequence(hand, seq, mirrored=False, weights=DEFAULT_WEIGHTS, steps=150):
    obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                     seq.teacher_confidence, seq.present, seq.times, seq.K,
                                     mirrored)
    result, _ = solve_track(hand, obs, placed, None, None, model_limit_frames(hand), weights,
                            steps, FitConfig().learning_rate)
    flip = MIRROR if mirrored else np.ones(3)
    return result, obs, placed.numpy().astype(float) * flip


@pytest.fixture(scope="module")
def fitted(hand):
    seq = synthetic_sequence(hand, NOISE, 60, seed=7)
    return (seq, *fit_sequence(hand, seq))


def test_fit_beats_its_teacher_in_2d_and_3d_on_a_known_sequence(fitted):
    seq, result, _, placed = fitted
    present = seq.present
    ok = present & np.isfinite(placed).all(-1).all(-1)
    teacher = summarise_3d(placed[ok], seq.joints_3d[ok])
    fit = summarise_3d(result.joints.numpy()[ok].astype(float), seq.joints_3d[ok])
    assert fit["pa_mpjpe_mm"] < 0.8 * teacher["pa_mpjpe_mm"]
    assert fit["mpjpe_mm"] < teacher["mpjpe_mm"]
    detected_2d = np.linalg.norm(seq.keypoints - seq.joints_2d, axis=-1)[present].mean()
    fit_2d = np.linalg.norm(result.projected.numpy() - seq.joints_2d, axis=-1)[present].mean()
    assert fit_2d < detected_2d


def test_a_track_solves_its_own_skeleton_when_the_person_is_not_the_model(hand):
    """A person whose rest joints sit up to 16 mm from the model's (as real hands and a
    detector's keypoint placement do): the track's own skeleton follows them, so the labels
    come closer to the truth in 2D and 3D than with the model's skeleton held."""
    seq = synthetic_sequence(hand, NOISE, 60, seed=7, skeleton_m=0.008)
    present = seq.present
    errors = {}
    for weight in (0.0, DEFAULT_WEIGHTS.skeleton):
        weights = dataclasses.replace(DEFAULT_WEIGHTS, skeleton=weight)
        result, _, _ = fit_sequence(hand, seq, weights=weights)
        joints = result.joints.numpy()[present].astype(float)
        errors[weight] = (
            np.linalg.norm(result.projected.numpy() - seq.joints_2d, axis=-1)[present].mean(),
            summarise_3d(joints, seq.joints_3d[present])["pa_mpjpe_mm"])
    held, solved = errors[0.0], errors[DEFAULT_WEIGHTS.skeleton]
    assert solved[0] < 0.9 * held[0] and solved[1] < 0.9 * held[1]
    detected = np.linalg.norm(seq.keypoints - seq.joints_2d, axis=-1)[present].mean()
    assert solved[0] < 0.8 * detected


def test_dropped_frames_are_filled_and_flagged(fitted):
    seq, result, _, _ = fitted
    missing = ~seq.present
    assert missing.any()  # the generator drops a few frames
    np.testing.assert_array_equal(result.interpolated.numpy(), missing)
    filled = result.joints.numpy()[missing].astype(float)
    error = summarise_3d(filled, seq.joints_3d[missing])
    assert error["pa_mpjpe_mm"] < 20  # a plausible hand where it should be, not a guess
    position = np.linalg.norm(filled[:, 9] - seq.joints_3d[missing, 9], axis=-1)
    assert position.mean() < 0.05


def test_temporal_terms_make_the_motion_smooth(hand, fitted):
    seq, result, _, _ = fitted
    still = FitWeights(rotation_acceleration=0.0, translation_acceleration=0.0)
    jumpy, _, _ = fit_sequence(hand, seq, weights=still)

    def acceleration(joints):
        return np.linalg.norm(joints[2:] - 2 * joints[1:-1] + joints[:-2], axis=-1).mean()
    assert acceleration(result.joints.numpy()) < 0.5 * acceleration(jumpy.joints.numpy())


def test_a_left_hand_is_fitted_in_the_mirror_and_comes_back_left(hand):
    right = synthetic_sequence(hand, NOISE, 40, seed=11)
    K = right.K
    # the same motion seen in a mirror: a left hand, x -> -x about the principal point
    joints = right.joints_3d * MIRROR
    pixels = joints[..., :2] / joints[..., 2:] * K[0, 0] + K[:2, 2]
    offsets = right.keypoints - right.joints_2d
    left = type(right)(right.times, K, joints, pixels, pixels + offsets * [-1, 1],
                       right.confidence, right.teacher * MIRROR, right.teacher_confidence)
    result, _, _ = fit_sequence(hand, left, mirrored=True)
    unmirrored = result.joints.numpy().astype(float) * MIRROR
    present = left.present
    assert summarise_3d(unmirrored[present], joints[present])["pa_mpjpe_mm"] < 10
    projected = result.projected.numpy()
    assert np.linalg.norm(projected - pixels, axis=-1)[present].mean() < 15


def test_quality_ranks_the_fitted_hands_by_their_error(hand):
    scores, errors = [], []
    for seed in (21, 22):
        seq = synthetic_sequence(hand, NOISE, 50, seed=seed)
        result, obs, _ = fit_sequence(hand, seq)
        config = ReconstructConfig()
        q = quality.track_quality(result, obs, config.quality_scale,
                                  config.quality_teacher_scale)
        per_frame = procrustes_errors(result.joints.numpy().astype(float), seq.joints_3d)
        scores += list(q[seq.present])
        errors += list(per_frame.mean(-1)[seq.present])
    assert confidence_error_correlation(np.array(scores), np.array(errors)) < -0.1


def test_rotation_term_is_zero_at_constant_speed_even_across_the_double_cover():
    times = torch.arange(12, dtype=torch.float64) / 30
    angles = 2.9 + 0.08 * torch.arange(12, dtype=torch.float64)  # passes pi: rotvecs wrap
    rotvecs = torch.zeros(12, 1, 3, dtype=torch.float64)
    rotvecs[:, 0, 2] = angles
    rotvecs = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(rotvecs))  # canonical, wrapped
    assert terms.rotation_acceleration(rotvecs, times).abs().max() < 1e-10
    jerked = rotvecs.clone()
    jerked[6, 0] = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(
        torch.tensor([0.0, 0.0, 2.9 + 0.08 * 6 + 0.1], dtype=torch.float64)))
    assert terms.rotation_acceleration(jerked, times)[5:8].min() > 1e-3


def test_temporal_terms_cost_a_small_change_its_square_and_a_cut_at_most_the_knee():
    times = torch.arange(5, dtype=torch.float64) / 30
    small = torch.zeros(5, 1, 3, dtype=torch.float64)
    cut = torch.zeros(5, 1, 3, dtype=torch.float64)
    small[2, 0, 0] = 0.01  # a 0.01 rad jitter at frame 2: changes 0.01, -0.02, 0.01
    cut[3:, 0, 0] = 2.5  # an unrelated pose from frame 3 on
    jitter = terms.rotation_acceleration(small, times)
    np.testing.assert_allclose(jitter[1:4], [1e-4, 4e-4, 1e-4], rtol=0.01)
    assert terms.rotation_acceleration(cut, times).max() <= terms.ROTATION_KNEE**2
    anchors = torch.tensor([[0.0, 0.0, 0.5]] * 5, dtype=torch.float64)
    anchors[3:, 0] = 0.4  # the hand reappears 0.4 m to the side
    assert terms.translation_acceleration(anchors, times).max() <= terms.TRANSLATION_KNEE**2


def test_unrelated_frames_in_one_track_keep_their_own_evidence(hand):
    """Images read as frames (or an edited video): the same sequence shuffled. The temporal
    terms must not drag unrelated frames towards each other: the labels stay near the fit
    without temporal terms, instead of far worse than the detections."""
    seq = synthetic_sequence(hand, NOISE, 40, seed=11)
    order = np.random.default_rng(0).permutation(40)
    shuffled = dataclasses.replace(seq, **{k: getattr(seq, k)[order] for k in (
        "keypoints", "confidence", "teacher", "teacher_confidence", "joints_3d", "joints_2d")})
    still = FitWeights(rotation_acceleration=0.0, translation_acceleration=0.0)

    def error_px(weights):
        result, _, _ = fit_sequence(hand, shuffled, weights=weights)
        return np.linalg.norm(result.projected.numpy() - shuffled.joints_2d,
                              axis=-1)[shuffled.present].mean()
    detected = np.linalg.norm(shuffled.keypoints - shuffled.joints_2d,
                              axis=-1)[shuffled.present].mean()
    assert error_px(DEFAULT_WEIGHTS) < min(1.25 * error_px(still), detected)


def test_rotation_term_respects_timestamps():
    # the same rotation speed over uneven steps: no acceleration
    times = torch.tensor([0.0, 1, 2, 4, 5, 7], dtype=torch.float64) / 30
    rotvecs = torch.zeros(6, 1, 3, dtype=torch.float64)
    rotvecs[:, 0, 0] = 0.05 * times * 30
    assert terms.rotation_acceleration(rotvecs, times).abs().max() < 1e-10


def test_teacher_term_ignores_the_teachers_frame_and_size():
    rng = np.random.default_rng(3)
    joints = torch.tensor(rng.normal(0, 0.04, (4, 21, 3)))
    rotation = roma.random_rotmat(4, dtype=torch.float64)
    teacher = 1.3 * torch.einsum("tij,tnj->tni", rotation, joints) + 0.2
    confidence = 0.5 + 0.5 * torch.rand(4, 21, dtype=torch.float64)  # every joint counts
    assert terms.teacher_3d(joints, teacher, confidence).abs().max() < 1e-8
    bent = teacher.clone()
    bent[:, 8] += 0.03  # one fingertip elsewhere
    assert terms.teacher_3d(joints, bent, confidence).min() > 1e-3
    none = terms.teacher_3d(joints, teacher * np.nan, torch.zeros(4, 21, dtype=torch.float64))
    assert torch.equal(none, torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("text", ["hflip", "rot+20", "rot-20", "hflip,rot+15"])
def test_world_landmarks_of_a_view_map_back_to_the_image_axes(text):
    view = Augmentation.parse(text)
    transform = crop_transform(np.array([300.0, 200.0]), 180.0, 256, view)
    world = np.random.default_rng(1).normal(0, 0.04, (21, 3))
    linear = transform[:, :2] / np.sqrt(abs(np.linalg.det(transform[:, :2])))
    seen = np.column_stack([world[:, :2] @ linear.T, world[:, 2]])  # as the view shows it
    np.testing.assert_allclose(unrotate_world(transform, seen), world, atol=1e-12)


def test_module_examples():
    for module in (placement, track, quality, cuts, terms, solve):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_temporal_terms_take_a_one_frame_track():
    """A track of one detected frame has no steps: its temporal terms are 0, not an error."""
    rotation = terms.rotation_acceleration(torch.zeros(1, 16, 3), torch.zeros(1))
    translation = terms.translation_acceleration(torch.ones(1, 3), torch.zeros(1))
    assert (rotation == 0).all() and (translation == 0).all()


def test_a_second_calibrated_view_fixes_the_depth_one_view_cannot_see(hand):
    """A rig's other camera (sequence.ViewObservations): one fit over both views puts the
    hand where it is in metres; one view alone cannot see its depth as well."""
    from handlabel.models.fit.sequence import ViewObservations

    seq = synthetic_sequence(hand, NOISE, 40, seed=11)
    centre = seq.joints_3d[:, 9].mean(0)
    R = roma.rotvec_to_rotmat(torch.tensor([0.0, np.radians(60), 0.0])).double().numpy()
    t = np.array([0.0, 0.0, np.linalg.norm(centre)]) - R @ centre
    seen = seq.joints_3d @ R.T + t
    pixels = seen[..., :2] / seen[..., 2:] * seq.K[0, 0] + seq.K[:2, 2]
    pixels = pixels + np.random.default_rng(3).normal(0, 1.5, pixels.shape)

    def tensor(values, dtype=torch.float32):
        return torch.as_tensor(np.asarray(values), dtype=dtype)

    obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                     seq.teacher_confidence, seq.present, seq.times, seq.K,
                                     False)
    limits = model_limit_frames(hand)

    def absolute_mm(observations) -> float:
        result, _ = solve_track(hand, observations, placed, None, None, limits,
                                DEFAULT_WEIGHTS, 150, FitConfig().learning_rate)
        error = np.linalg.norm(result.joints.numpy() - seq.joints_3d, axis=-1)
        return float(error[seq.present].mean() * 1000)

    alone = absolute_mm(obs)
    obs.views = [ViewObservations(tensor(pixels), tensor(np.ones((40, 21))),
                                  tensor(np.full(40, 150.0)), tensor(np.ones(40), torch.bool),
                                  tensor(R), tensor(t), tensor(seq.K))]
    both = absolute_mm(obs)
    assert both < 0.5 * alone and both < 10.0, (alone, both)


def test_where_the_network_start_wins_the_teacher_start_is_fitted_too(hand, monkeypatch):
    """A start that explains the evidence better can still end in a worse fit (the coffee
    clip's mug hand: 36 px from its detections from the network's start, 1.8 px from the
    teacher's). Where the network's start wins the choice, the teacher's is the second
    candidate, and the fit that ends closer to the evidence is kept."""
    seq = synthetic_sequence(hand, NOISE, 20, seed=3)
    obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                     seq.teacher_confidence, seq.present, seq.times, seq.K,
                                     False)
    limits = model_limit_frames(hand)
    (teacher,), _ = track.track_starts(hand, obs, placed, None, None, limits, DEFAULT_WEIGHTS)
    # a network whose start is closer to the evidence: the teacher's, a few steps on
    network = fit_track(hand, obs, teacher, limits, DEFAULT_WEIGHTS, steps=10).parameters
    scale = teacher.log_scale.exp().expand(len(seq.times))
    starts, _ = track.track_starts(hand, obs, placed, network, scale, limits, DEFAULT_WEIGHTS)
    assert len(starts) == 2 and torch.equal(starts[1].anchor, teacher.anchor)

    real, calls = track.fit_tracks, []

    def first_fit_ends_off(*args, **kwargs):  # the network start's fit: 40 px off
        results = real(*args, **kwargs)
        calls.extend(results)
        return [dataclasses.replace(results[0], projected=results[0].projected + 40.0),
                *results[1:]]

    monkeypatch.setattr(track, "fit_tracks", first_fit_ends_off)
    result, _ = solve_track(hand, obs, placed, network, scale, limits, DEFAULT_WEIGHTS, 30,
                            FitConfig().learning_rate)
    assert len(calls) == 2
    error = np.linalg.norm(result.projected.numpy() - seq.keypoints, axis=-1)[seq.present]
    assert np.median(error) < 20, "the fit from the teacher's start was kept"


@pytest.mark.parametrize("carry", ["none", "cubic"])
def test_tracks_solved_in_one_batch_get_the_fits_they_get_alone(hand, carry):
    """Tracks of different lengths padded into one batch (``solve.fit_tracks``): each ends
    where it ends when solved alone, to float rounding; padding, other tracks and their
    timestamps reach nothing (every start fitted 40 steps, with missed frames inside)."""
    limits = model_limit_frames(hand)
    problems = []
    for frames, seed, fps in ((20, 4, 30.0), (14, 5, 25.0), (17, 6, 30.0)):
        seq = synthetic_sequence(hand, NOISE, frames, seed=seed, fps=fps, dropout=0.2)
        obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                         seq.teacher_confidence, seq.present, seq.times, seq.K,
                                         False)
        (start,), _ = track.track_starts(hand, obs, placed, None, None, limits,
                                         DEFAULT_WEIGHTS)
        problems.append((obs, start))
    assert not all(obs.present.all() for obs, _ in problems)
    assert length_batches([len(obs) for obs, _ in problems]) == [[0, 2, 1]]
    together = fit_tracks(hand, problems, limits, DEFAULT_WEIGHTS, steps=40, carry=carry)
    for (obs, start), batched in zip(problems, together, strict=True):
        alone = fit_track(hand, obs, start, limits, DEFAULT_WEIGHTS, steps=40, carry=carry)
        assert batched.joints.shape == alone.joints.shape == (len(obs), 21, 3)
        np.testing.assert_allclose(batched.joints.numpy(), alone.joints.numpy(), atol=1e-5)
        np.testing.assert_allclose(batched.parameters.betas.numpy(),
                                   alone.parameters.betas.numpy(), atol=1e-4)


def test_the_networks_joints_carry_a_span_the_detector_cannot_see(hand):
    """A third of a known sequence without detections or teacher (an object over the hand):
    with the network's 3D as evidence (here a network 4 mm off the truth per joint, fully
    trusted), the fit follows the hand's articulation through the span; without it, only the
    temporal terms fill it (the network's articulation: its orientation is not used). A
    network term with no trust changes nothing."""
    seq = synthetic_sequence(hand, NOISE, 60, seed=11)
    hidden = np.zeros(60, bool)
    hidden[20:40] = True
    present = seq.present & ~hidden
    obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                     np.where(hidden[:, None], 0.0, seq.teacher_confidence),
                                     present, seq.times, seq.K, False)
    network = seq.joints_3d + np.random.default_rng(1).normal(0, 0.004, seq.joints_3d.shape)
    weights = dataclasses.replace(DEFAULT_WEIGHTS, network_3d=1.0)

    def gap_pa_mm(trust: float, weights: FitWeights) -> float:
        evidence = dataclasses.replace(obs, **network_observations(network, False, trust))
        result, _ = solve_track(hand, evidence, placed, None, None, model_limit_frames(hand),
                                weights, 150, FitConfig().learning_rate)
        joints = result.joints.numpy().astype(float)
        return summarise_3d(joints[hidden], seq.joints_3d[hidden])["pa_mpjpe_mm"]

    without = gap_pa_mm(1.0, DEFAULT_WEIGHTS)
    with_network = gap_pa_mm(1.0, weights)
    assert with_network < 0.6 * without, (with_network, without)
    assert gap_pa_mm(0.0, weights) == pytest.approx(without, abs=1e-4)


def test_a_covered_span_keeps_the_detectors_articulation_on_the_bridges_path(hand):
    """A third of a known sequence left to the track as covered (``without_frames``), carried
    on the line bridge: keeping the detector's 3D there (``fit.covered_teacher``) lets the
    hand articulate as the teacher saw it, where the bridge alone slerps the pose between the
    span's ends; either way the span is interpolated, and its orientation and place stay on
    the bridge. Hiding the span again (the self-check) takes the 3D away too."""
    from handlabel.models.fit.gaps import bridge
    from handlabel.models.fit.window import (
        WindowArrays,
        solve_window,
        window_evidence,
        without_frames,
    )

    seq = synthetic_sequence(hand, NOISE, 60, seed=11)
    hidden = np.zeros(60, bool)
    hidden[20:40] = True
    arrays = WindowArrays(keypoints=seq.keypoints, weights=seq.confidence**2, world=seq.teacher,
                          world_confidence=seq.teacher_confidence, present=seq.present,
                          mirrored=np.zeros(60, bool), times=seq.times,
                          K=seq.K.astype(np.float32))
    kept = without_frames(arrays, hidden, keep_teacher=True)
    assert not kept.present[hidden].any() and kept.teacher_only[hidden].all()
    again = without_frames(kept, hidden)
    assert not again.teacher_only.any() and np.isnan(again.world[hidden]).all()

    def solved(window: WindowArrays):
        result, _ = solve_window(hand, window_evidence(window), model_limit_frames(hand),
                                 DEFAULT_WEIGHTS, 150, FitConfig().learning_rate, carry="line")
        pa = summarise_3d(result.joints.numpy().astype(float)[hidden],
                          seq.joints_3d[hidden])["pa_mpjpe_mm"]
        return result, pa

    with_teacher, pa_kept = solved(kept)
    without_teacher, pa_dropped = solved(without_frames(arrays, hidden))
    assert pa_kept < 0.7 * pa_dropped, (pa_kept, pa_dropped)
    seen = torch.as_tensor(~hidden & seq.present)
    for result in (with_teacher, without_teacher):
        assert result.interpolated[torch.as_tensor(hidden)].all()
        orient = result.parameters.global_orient
        on_bridge = bridge(seen, torch.as_tensor(seq.times, dtype=torch.float32)).rotations(orient)
        torch.testing.assert_close(on_bridge[hidden], orient[hidden], atol=1e-4, rtol=0)


def test_the_network_is_trusted_as_far_as_it_agrees_with_the_detections():
    rng = np.random.default_rng(0)
    detections = rng.uniform(100, 300, (40, 21, 2))
    size = hand_sizes(detections)[:, None, None]
    weights = np.ones((40, 21))
    close = network_error(detections + rng.normal(0, 0.03, detections.shape) * size,
                          detections, weights)
    far = network_error(detections + rng.normal(0, 0.3, detections.shape) * size,
                        detections, weights)
    assert network_trust(close) == 1.0
    assert 0 < network_trust(far) < 0.1
    # too few hands seen by both: nothing to calibrate on, no trust
    missing = detections.copy()
    missing[5:] = np.nan
    assert network_trust(network_error(detections, missing, weights)) == 0.0


def test_an_object_passing_over_the_hand_is_no_cut_and_its_gaps_are_filled(hand):
    """A moving hand whose detections jump about for 12 frames (an object over it, some
    frames missed) stays one track from first to last frame; the same jumps followed by
    another shot keep their cut; without settling, the jumps chop the track."""
    seq = synthetic_sequence(hand, NOISE, 60, seed=7)
    keypoints, times = seq.keypoints.copy(), seq.times
    present = np.isfinite(keypoints).all((1, 2))
    keypoints = np.nan_to_num(keypoints)
    size = float(np.median(hand_sizes(keypoints[present])))
    rng = np.random.default_rng(0)
    keypoints[24:36] += rng.uniform(-3 * size, 3 * size, (12, 1, 2))  # the whole hand jumps
    keypoints[24:36] += rng.normal(0, 0.3 * size, (12, 21, 2))  # and its shape
    present[[26, 27, 30, 31, 32]] = False
    fit = FitConfig()

    def spans(points, config):
        return track.track_spans(present, times, config.max_gap_s, None,
                                 track_cuts(points, present, times, config))

    assert len(spans(keypoints, FitConfig(cut_settle_s=0))) > 1  # what settling mends
    assert spans(keypoints, fit) == [(0, 60)]
    edited = keypoints.copy()
    edited[36:] += 5 * size  # another shot after the jumps
    assert spans(edited, fit)[-1] == (36, 60)  # the new shot is a track of its own
