"""What seed 002's binocular terms (models/losses/stereo.py) cost per training step.

    .venv/bin/python bench/stereo_losses.py [--batch 32] [--sizes 64 224] [--repeats 3]

One step's worth of pairs: B meshes of the embedded hand in camera i, carried into camera j
of a synthetic rig 40 degrees apart, warped and compared (forward and backward), against the
monocular photometric step's own rendering of the same meshes (one render, L1 + SSIM). CPU
time here; the renderer is the training's default (DEODR on CPU).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import pandas as pd
import torch

from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.losses.photometric import photometric_loss
from handlabel.models.losses.stereo import stereo_losses
from handlabel.models.render import make_renderer
from handlabel.models.render.base import Light


def _pairs(batch: int, size: int, model: DefaultHandModel):
    torch.manual_seed(0)
    out = model(torch.randn(batch, 3) * 0.3, torch.randn(batch, 15, 3) * 0.2,
                torch.zeros(batch, model.n_shape))
    vertices = out.vertices - out.joints[:, 9:10] + torch.tensor([0.0, 0.0, 0.5])
    angle = np.radians(40)
    R = torch.tensor([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0],
                      [np.sin(angle), 0, np.cos(angle)]], dtype=torch.float32)
    t = torch.tensor([0.5 * np.sin(angle), 0, 0.5 - 0.5 * np.cos(angle)], dtype=torch.float32)
    K = torch.tensor([[size * 2.0, 0, size / 2], [0, size * 2.0, size / 2], [0, 0, 1]])
    images = torch.rand(2, batch, size, size, 3)
    return vertices, R.expand(batch, 3, 3), t.expand(batch, 3), K.expand(batch, 3, 3), images


def _monocular(renderer, model, size, vertices, R, t, K, images) -> None:
    v = vertices.clone().requires_grad_(True)
    out = renderer.render(v, model.faces, torch.full_like(v, 0.6), K, size, size,
                          Light.ambient_only(len(v)))
    photometric_loss(out.image, images[0], out.silhouette, torch.ones(len(v))).backward()


def _binocular(renderer, model, vertices, R, t, K, images) -> None:
    v = vertices.clone().requires_grad_(True)
    other = torch.einsum("bij,bvj->bvi", R, vertices) + t[:, None]
    mask = torch.ones(images.shape[1:4])
    stereo_losses(renderer, model.faces, v, other, vertices, images[0], images[1], mask, K, K,
                  R, t)["total"].backward()


def _timed(step, repeats: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, renderer = DefaultHandModel(), make_renderer("deodr")
    rows = []
    for size in args.sizes:
        pairs = _pairs(args.batch, size, model)
        mono = _timed(partial(_monocular, renderer, model, size, *pairs), args.repeats)
        stereo = _timed(partial(_binocular, renderer, model, *pairs), args.repeats)
        rows.append({"render side": size, "batch": args.batch,
                     "monocular photometric s": mono, "rig terms s (one direction)": stereo,
                     "both directions / monocular": 2 * stereo / mono})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print(f"\n    .venv/bin/python bench/stereo_losses.py --batch {args.batch} "
          f"--sizes {' '.join(map(str, args.sizes))} --repeats {args.repeats}")


if __name__ == "__main__":
    main()
