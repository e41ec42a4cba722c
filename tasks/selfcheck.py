"""Reconstruct's self-check of one video (``models/fit/selfcheck.py``): a few seeded spans of
its tracks hidden from a fit of the windows around them, and the hidden detections compared
with that fit and with straight-line interpolation. Written beside the labels
(``selfcheck_px``, ``selfcheck_interpolation_px``); the labels themselves are not touched."""

from __future__ import annotations

import numpy as np

from handlabel.config import ReconstructConfig
from handlabel.models.fit.selfcheck import (
    HeldOut,
    held_out_spans,
    hidden_errors,
    interpolation_errors,
)
from handlabel.models.fit.sequence import FitResult
from handlabel.models.fit.window import (
    Carried,
    WindowArrays,
    solve_windows,
    window_evidence,
    without_frames,
)
from handlabel.models.hand.base import HandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.training.setup import pick_device
from handlabel.storage.frames import frame_interval
from handlabel.storage.stage_arrays import StageArrays
from handlabel.storage.store import DatasetStore

from .hand_fit import fit_weights_of, fitted_window, video_tracks


def selfcheck_video(store: DatasetStore, video_id: str, hand_model: HandModel,
                    config: ReconstructConfig, labels: StageArrays, network: str = "network"
                    ) -> int:
    """Hide ``config.selfcheck.spans`` spans of the video's tracks, fit each window without
    them (all the windows together), write the errors; returns the hidden frames measured."""
    check = config.selfcheck
    tracks = video_tracks(store, video_id, config.fit)
    if not check.spans or not tracks:
        return 0
    device = pick_device(config.device)
    hand_model = hand_model.to(device)
    limit_frames = model_limit_frames(hand_model).to(device)
    times = store.video(video_id).timestamps()
    interval = frame_interval(times)
    fps = 1.0 / interval if interval > 0 else 30.0
    present = store.stage(video_id, "detect").read("present")
    seed = [check.seed, int(video_id.encode().hex()[:15], 16)]
    spans = held_out_spans(tracks, present, fps, check.spans, check.span_s, check.context_s,
                           seed)
    hidden_windows = [_hidden_window(store, video_id, span, config, network) for span in spans]
    solved = solve_windows(
        hand_model, [window_evidence(without_frames(arrays, hidden), device,
                                     float(labels.attrs.get("network_trust", 0.0)))
                     for arrays, hidden in hidden_windows],
        limit_frames, fit_weights_of(config.fit), config.fit.steps, config.fit.learning_rate,
        carry=config.fit.carry_unseen)
    return sum(_write_span(span, arrays, hidden, result, labels) for span, (arrays, hidden),
               result in zip(spans, hidden_windows, solved, strict=True) if result is not None)


def _hidden_window(store: DatasetStore, video_id: str, span: HeldOut, config: ReconstructConfig,
                   network: str) -> tuple[WindowArrays, np.ndarray]:
    """The span's window as the labels' fit sees it, and its hidden frames (T,) bool."""
    arrays, _ = fitted_window(store, video_id, span.slot, span.window_start, span.window_stop,
                              config.fit, network)
    hidden = np.zeros(span.window_stop - span.window_start, bool)
    hidden[span.hidden_start - span.window_start : span.hidden_stop - span.window_start] = True
    return arrays, hidden


def _write_span(span: HeldOut, arrays: WindowArrays, hidden: np.ndarray,
                solved: tuple[FitResult, Carried], labels: StageArrays) -> int:
    """The hidden frames' errors, fitted and straight-line; returns how many were measured."""
    projected = solved[0].projected.detach().cpu().numpy()
    fitted = hidden_errors(projected[hidden], arrays.keypoints[hidden], arrays.weights[hidden])
    straight = interpolation_errors(arrays.keypoints, arrays.weights, arrays.times, span,
                                    span.window_start)
    frames = slice(span.hidden_start, span.hidden_stop)
    labels.group["selfcheck_px"][frames, span.slot] = fitted
    labels.group["selfcheck_interpolation_px"][frames, span.slot] = straight
    return int(np.isfinite(fitted).sum())
