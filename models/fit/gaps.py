"""Frames without evidence carried across by their neighbours: rotations along the shorter
arc (slerp), anything else in a straight line, in time. The fit's start fills its gaps this
way (``track.fill_gaps``), and the fit holds its unseen frames to it at every step
(``sequence.fit_track``): with no data term there, Adam's per-parameter step sizes would
otherwise walk them away (a hidden hand drifted 0.8 m in depth over 10 frames on the
self-check, ``models/fit/selfcheck.py``). roma's slerp interpolates every pair at every
step; here each frame has its own pair and step, so it is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch


@dataclass(frozen=True)
class Bridge:
    """For each of T frames, the known frames before (``a``) and after (``b``) it and how
    far along between them it lies (``step``, 0..1; frames before the first or after the
    last known one take its values)."""

    a: np.ndarray
    b: np.ndarray
    step: torch.Tensor
    before_a: np.ndarray  # the known frame before ``a`` (``a`` itself at the first)
    after_b: np.ndarray  # the known frame after ``b`` (``b`` itself at the last)
    times: torch.Tensor

    def rotations(self, rotvecs: torch.Tensor) -> torch.Tensor:
        """(T, ..., 3) axis-angles, slerped between the known frames."""
        q = roma.rotvec_to_unitquat(rotvecs.detach())
        q0, q1 = q[self.a], q[self.b]
        w = self.step.view(-1, *[1] * (q.dim() - 1))
        dot = (q0 * q1).sum(-1, keepdim=True)
        q1 = torch.where(dot < 0, -q1, q1)  # the shorter arc
        angle = torch.acos(dot.abs().clamp(max=1.0))
        sin = torch.sin(angle).clamp_min(1e-9)
        slerp = (torch.sin((1 - w) * angle) * q0 + torch.sin(w * angle) * q1) / sin
        linear = (1 - w) * q0 + w * q1  # where the two are (nearly) the same rotation
        blended = torch.where(angle < 1e-4, linear, slerp)
        return roma.unitquat_to_rotvec(roma.quat_normalize(blended))

    def linear(self, values: torch.Tensor) -> torch.Tensor:
        """(T, ...) values in a straight line between the known frames."""
        values = values.detach()
        w = self.step.view(-1, *[1] * (values.dim() - 1))
        return (1 - w) * values[self.a] + w * values[self.b]

    def cubic(self, values: torch.Tensor) -> torch.Tensor:
        """(T, ...) values on the cubic (Hermite) that leaves each known end at the velocity
        it arrived with (from the known frame beyond it): a hand moving fast into a gap
        keeps moving instead of turning onto the straight line."""
        values, t = values.detach(), self.times
        shape = (-1, *[1] * (values.dim() - 1))

        def velocity(later: np.ndarray, earlier: np.ndarray) -> torch.Tensor:
            dt = (t[later] - t[earlier]).view(shape)
            return (values[later] - values[earlier]) / dt.clamp_min(1e-9) * (dt > 1e-9)

        s = self.step.view(shape)
        span = (t[self.b] - t[self.a]).view(shape)
        h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
        h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
        return (h00 * values[self.a] + h10 * span * velocity(self.a, self.before_a)
                + h01 * values[self.b] + h11 * span * velocity(self.after_b, self.b))


def bridge(known: torch.Tensor, times: torch.Tensor) -> Bridge:
    """The bridge over the frames where ``known`` (T,) is False; needs one known frame.

    >>> b = bridge(torch.tensor([True, False, False, True]), torch.arange(4.0))
    >>> b.linear(torch.tensor([0.0, 9.0, 9.0, 3.0])).tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> b = bridge(torch.tensor([True, True, False, False, True, True]), torch.arange(6.0))
    >>> b.cubic(torch.tensor([0.0, 1.0, 9.0, 9.0, 4.0, 5.0])).round().tolist()  # steady motion
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    t = times.detach().cpu().numpy().astype(float)
    at = np.flatnonzero(known.cpu().numpy())
    after = np.clip(np.searchsorted(at, np.arange(len(t))), 0, len(at) - 1)
    before = np.clip(after - (t[at[after]] > t).astype(int), 0, len(at) - 1)
    a, b = at[before], at[after]
    span = np.maximum(t[b] - t[a], 1e-9)
    step = torch.as_tensor(np.clip((t - t[a]) / span, 0, 1), dtype=times.dtype,
                           device=times.device)
    return Bridge(a, b, step, at[np.maximum(before - 1, 0)],
                  at[np.minimum(after + 1, len(at) - 1)], times.detach())
