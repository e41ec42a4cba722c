"""One training step's binocular terms (seed 002, ``losses/stereo.py``) on a rig's pairs.

A pair is one hand at one instant seen by two calibrated cameras: both crops go through the
network together, and each view's mesh is carried into the other and checked there, in both
directions. The pair crops are not augmented: the same colour jitter would have to reach
both views for photo-consistency to hold, and the rotation is already the crops' K's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

from ..camera import scale_intrinsics
from ..losses.objective import Supervision
from ..losses.stereo import StereoWeights, stereo_losses
from ..network import S2HandNet
from ..render import Renderer
from ..render.base import Light
from .batches import HandCrops, make_batch


@dataclass
class PairBatch:
    """P pairs: samples 0..P-1 are the first views, P..2P-1 the second."""

    supervision: Supervision  # (2P, ...) at the network's input size
    R: torch.Tensor  # (P, 3, 3) first view's crop camera to the second's
    t: torch.Tensor  # (P, 3) metres


def pair_batch(data: HandCrops, count: int, input_size: int, device: torch.device,
               generator: torch.Generator) -> PairBatch:
    """``count`` pairs drawn at random from ``data.pairs``."""
    chosen = torch.randint(len(data.pairs), (count,), generator=generator)
    rows = data.pairs[chosen]
    supervision = make_batch(data, torch.cat([rows[:, 0], rows[:, 1]]), input_size, device)
    return PairBatch(supervision, data.pair_R[chosen].to(device).float(),
                     data.pair_t[chosen].to(device).float())


def stereo_terms(net: S2HandNet, reference: S2HandNet | None, renderer: Renderer,
                 pair: PairBatch, weights: StereoWeights, render_size: int, amp: bool = False
                 ) -> dict[str, torch.Tensor]:
    """The weighted terms of both directions, summed, and their ``total``. Without a
    ``reference`` network there is no pseudo-mesh: the edge term is off."""
    batch = pair.supervision
    count = len(pair.R)
    vertices = net(batch.images, batch.K, amp=amp).vertices
    if reference is None:
        weights = replace(weights, edge=0.0)
        pseudo = vertices.detach()
    else:
        with torch.no_grad():
            pseudo = reference(batch.images, batch.K).vertices
    images, K = _at_render_size(batch.images, batch.K, render_size)
    masks = _own_silhouettes(renderer, net.hand_model.faces, vertices.detach(), K, render_size)
    first, second = slice(0, count), slice(count, 2 * count)
    R_back = pair.R.transpose(1, 2)
    t_back = -torch.einsum("bij,bj->bi", R_back, pair.t)
    total: dict[str, torch.Tensor] = {}
    for a, b, R, t in ((first, second, pair.R, pair.t), (second, first, R_back, t_back)):
        terms = stereo_losses(renderer, net.hand_model.faces, vertices[a], vertices[b],
                              pseudo[a], images[a], images[b], masks[b], K[a], K[b], R, t,
                              weights)
        for name, value in terms.items():
            total[name] = total.get(name, 0.0) + value
    return total


def _at_render_size(images: torch.Tensor, K: torch.Tensor, size: int):
    factor = size / images.shape[1]
    if factor == 1:
        return images, K
    resized = F.interpolate(images.permute(0, 3, 1, 2), size=size, mode="bilinear",
                            antialias=True, align_corners=False).permute(0, 2, 3, 1)
    return resized, scale_intrinsics(K, factor)


def _own_silhouettes(renderer, faces, vertices, K, size) -> torch.Tensor:
    """(2P, S, S) each view's own predicted silhouette: the other view's mask target (the
    seed's masks come from a skin detector, which this project does not have)."""
    light = Light.ambient_only(len(vertices), device=vertices.device)
    with torch.no_grad():
        return renderer.render(vertices, faces, torch.ones_like(vertices), K, size, size,
                               light).silhouette
