"""One window of one tracked hand: its stored arrays in, the fit's result out.

The single-camera labels (``tasks/hand_fit.py``) and a rig's labels
(``tasks/rig_reconstruct.py``) fit windows the same way: the detections, their weights, the
detector's 3D and the network's per-frame start, in the fit's camera (mirrored for a left
hand), started and solved by ``track.solve_tracks`` (many windows at once). The rig adds
its other views and its triangulated teacher to the observations between
``window_evidence`` and ``solve_window``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..hand.base import HandModel
from ..hand.sides import mirror_points
from .observe import network_parameters, track_observations
from .sequence import Carry, FitParameters, FitResult, FitWeights, TrackObservations
from .track import TrackProblem, solve_tracks

# The network step's arrays a window's fit starts from, and those its network term uses.
NETWORK_START = ("global_orient", "hand_pose", "translation", "scale")
NETWORK_EVIDENCE = ("joints_3d",)


@dataclass
class WindowArrays:
    """One window of one hand, T frames, as the detect, weight and network stages store it.

    Attributes:
        keypoints: (T, 21, 2) detections in frame pixels (NaN where absent).
        weights: (T, 21) the weight stage's joint weights.
        world: (T, 21, 3) the detector's 3D, metres; world_confidence: (T, 21).
        present: (T,) frames with a detection; mirrored: (T,) the detector's left-hand flag.
        times: (T,) seconds; K: (3, 3) the frame's intrinsics.
        network: the network step's ``NETWORK_START`` arrays: (T, 3), (T, 15, 3), (T, 3), (T,),
            and its ``NETWORK_EVIDENCE``, joints (T, 21, 3) in the frame's camera (None: the
            fit starts from the detector's 3D alone and has no network term).
        teacher_only: (T,) frames whose detection is left out of the fit but whose 3D still
            counts: its articulation, which needs no 2D (None: none).
    """

    keypoints: np.ndarray
    weights: np.ndarray
    world: np.ndarray
    world_confidence: np.ndarray
    present: np.ndarray
    mirrored: np.ndarray
    times: np.ndarray
    K: np.ndarray
    network: dict[str, np.ndarray] | None = None
    teacher_only: np.ndarray | None = None


def without_frames(arrays: WindowArrays, hidden: np.ndarray, keep: tuple[str, ...] = (),
                   keep_teacher: bool = False) -> WindowArrays:
    """The window as the fit would see it had the detector missed the ``hidden`` (T,) frames:
    no detection, no detector 3D and no network prediction there (the network runs on
    detected crops only), but for the network arrays named in ``keep`` and, with
    ``keep_teacher``, the detector's 3D (``teacher_only``). The self-check hides spans so;
    the labels hide the detections an object covers (``reconstruct.fit.covered_share``),
    keeping the network's evidence of those crops and, with ``fit.covered_teacher``, the
    detector's articulation."""
    def blank(values: np.ndarray, fill) -> np.ndarray:
        out = np.array(values, copy=True)
        out[hidden] = fill
        return out

    teacher_only = np.zeros(len(hidden), bool) if arrays.teacher_only is None \
        else np.asarray(arrays.teacher_only, bool)
    if keep_teacher:
        world, world_confidence = arrays.world, arrays.world_confidence
        teacher_only = teacher_only | (hidden & arrays.present)
    else:
        world = blank(arrays.world, np.nan)
        world_confidence = blank(arrays.world_confidence, 0.0)
        teacher_only = teacher_only & ~hidden
    return replace(
        arrays, keypoints=blank(arrays.keypoints, np.nan), weights=blank(arrays.weights, 0.0),
        world=world, world_confidence=world_confidence, teacher_only=teacher_only,
        present=blank(arrays.present, False),
        network=None if arrays.network is None else
        {k: np.asarray(v, np.float32) if k in keep else blank(np.asarray(v, np.float32), np.nan)
         for k, v in arrays.network.items()})


@dataclass
class WindowEvidence:
    """A window in the fit's camera: observations, the placed teacher (T, 21, 3), the
    network's start and its size (T,) (None without the network), and whether the hand is
    fitted in the mirror."""

    obs: TrackObservations
    placed: torch.Tensor
    start: FitParameters | None
    start_scale: torch.Tensor | None
    mirrored: bool


Carried = tuple[FitParameters, torch.Tensor]  # a long track's shape and size, window to window


def window_evidence(arrays: WindowArrays, device: str | torch.device = "cpu",
                    network_trust: float = 0.0) -> WindowEvidence:
    """The fit's evidence of one window (left hands mirrored into a right hand's camera);
    with ``network_trust`` above 0 (``network_trust.py``) the network's joints are evidence
    too, each frame's counting that much."""
    mirrored = bool(arrays.mirrored[arrays.present].any())
    obs, placed = track_observations(arrays.keypoints, arrays.weights, arrays.world,
                                     arrays.world_confidence, arrays.present, arrays.times,
                                     arrays.K, mirrored, device, arrays.teacher_only)
    net = arrays.network
    if net is None:
        return WindowEvidence(obs, placed, None, None, mirrored)
    if network_trust > 0 and "joints_3d" in net:
        obs = replace(obs, **network_observations(net["joints_3d"], mirrored, network_trust,
                                                  device))
    start = network_parameters(net["global_orient"], net["hand_pose"], net["translation"],
                               mirrored, device)
    scale = torch.as_tensor(net["scale"], dtype=torch.float32, device=device)
    return WindowEvidence(obs, placed, start, scale, mirrored)


def network_observations(joints: np.ndarray, mirrored: bool, trust: float,
                         device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``TrackObservations``' network fields from the network step's joints (T, 21, 3) in the
    frame's camera (NaN where it saw no crop): mirrored into the fit's camera, and ``trust``
    on every frame that has them."""
    joints = mirror_points(np.asarray(joints, np.float32), mirrored)
    seen = np.isfinite(joints).all((-1, -2))
    return {"network": torch.as_tensor(joints, device=device),
            "network_confidence": torch.as_tensor(np.where(seen, trust, 0.0).astype(np.float32),
                                                  device=device)}


def solve_windows(hand_model: HandModel, evidences: list[WindowEvidence],
                  limit_frames: torch.Tensor, weights: FitWeights, steps: int, lr: float,
                  carried: list[Carried | None] | None = None, carry: Carry = "none",
                  progress: Callable[[float], None] | None = None
                  ) -> list[tuple[FitResult, Carried] | None]:
    """Fit windows (of different tracks) together (``track.solve_tracks``); per window its
    result and what its track's next window carries on, or None where no frame of the window
    has a start. ``progress`` gets the share of the work done as it goes."""
    problems = [TrackProblem(e.obs, e.placed, e.start, e.start_scale, c)
                for e, c in zip(evidences, carried or [None] * len(evidences), strict=True)]
    solved = solve_tracks(hand_model, problems, limit_frames, weights, steps, lr, carry,
                          progress)
    return [None if s is None else (s[0], (s[0].parameters, s[1])) for s in solved]


def solve_window(hand_model: HandModel, evidence: WindowEvidence, limit_frames: torch.Tensor,
                 weights: FitWeights, steps: int, lr: float, carried: Carried | None = None,
                 carry: Carry = "none") -> tuple[FitResult, Carried] | None:
    """``solve_windows`` for one window."""
    return solve_windows(hand_model, [evidence], limit_frames, weights, steps, lr, [carried],
                         carry)[0]
