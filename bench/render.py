"""Rendering and hand-model speed on CPU: a batch of hand-sized meshes at crop resolution.

    .venv/bin/python bench/render.py [--batch 32] [--pytorch3d-batch 4] [--size 224]
                                     [--repeats 3]

Renderer rows: forward (image, silhouette, depth) and forward + backward of a photometric-style
loss, for a batch of closed meshes of hand size and vertex count (an icosphere of 642
vertices, 9 cm across, 0.5 m away, filling a 224 px crop like a hand). pytorch3d, where the
optional extra is installed, runs a smaller batch on CPU (its CPU rasteriser tests every face
at every pixel: about 0.2 s a mesh); the per-item column compares the backends. Hand model row: the
embedded default hand (801 vertices, 16 joints, 10 shape coefficients) in random poses.
Median of the repeats.
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
import torch
import trimesh
from timing import median_seconds

from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.render import Light, make_renderer


def hand_sized_batch(batch: int, size: int):
    mesh = trimesh.creation.icosphere(subdivisions=3)
    rng = np.random.default_rng(0)
    base = torch.tensor(mesh.vertices) * 0.045
    offsets = torch.tensor(rng.uniform(-0.01, 0.01, (batch, 1, 3))) + torch.tensor([0, 0, 0.5])
    vertices = (base[None] + offsets).requires_grad_(True)
    faces = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.long)
    colors = torch.full(vertices.shape, 0.6, dtype=torch.float64, requires_grad=True)
    focal = size * 0.5 / 0.09 * 0.9  # the mesh spans about 90% of the crop
    K = torch.tensor([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
    return vertices, faces, colors, K.expand(batch, 3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pytorch3d-batch", type=int, default=4,
                        help="pytorch3d's batch on CPU (the full batch on CUDA)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    rows = []
    backends = {"deodr": args.batch}
    if importlib.util.find_spec("pytorch3d"):
        backends["pytorch3d"] = args.pytorch3d_batch
    for backend, batch in backends.items():
        renderer = make_renderer(backend)
        vertices, faces, colors, K = hand_sized_batch(batch, args.size)
        light = Light(torch.full((batch, 3), 0.4), torch.full((batch, 3), 0.6),
                      torch.nn.functional.normalize(torch.tensor([[0.2, 0.3, 1.0]]), dim=-1)
                      .expand(batch, 3))
        target = torch.rand(batch, args.size, args.size, 3, dtype=torch.float64)

        def forward(renderer=renderer, scene=(vertices, faces, colors, K, light)):
            with torch.no_grad():
                renderer.render(*scene[:4], args.size, args.size, scene[4])

        def forward_backward(renderer=renderer, scene=(vertices, faces, colors, K, light),
                             target=target):
            out = renderer.render(*scene[:4], args.size, args.size, scene[4])
            ((out.image - target.to(out.image)).abs() * out.silhouette[..., None]).mean(
            ).backward()

        forward()  # builds cached topology once, as training does
        rows += [(f"{backend} forward", batch, median_seconds(forward, args.repeats)),
                 (f"{backend} forward + backward", batch,
                  median_seconds(forward_backward, args.repeats))]

    model = DefaultHandModel()
    rng = np.random.default_rng(1)
    pose = torch.tensor(rng.normal(0, 0.3, (args.batch, 15, 3)), dtype=torch.float32)
    orient, betas = torch.zeros(args.batch, 3), torch.zeros(args.batch, model.n_shape)
    with torch.no_grad():
        rows.append(("default hand model forward (801 vertices)", args.batch,
                     median_seconds(lambda: model(orient, pose, betas), args.repeats)))

    print(f"\n{args.size}x{args.size} px, 642-vertex closed meshes, "
          f"CPU ({torch.get_num_threads()} threads), median of {args.repeats}\n")
    print("| run | batch | seconds per batch | ms per item |")
    print("|---|--:|---:|---:|")
    for name, batch, seconds in rows:
        print(f"| {name} | {batch} | {seconds:.3f} | {seconds / batch * 1000:.1f} |")
    if "pytorch3d" not in backends:
        print("\npytorch3d backend: not installed (HANDLABEL_PYTORCH3D=1 make setup).")
    print(f"Reproduce: .venv/bin/python bench/render.py --batch {args.batch} "
          f"--pytorch3d-batch {args.pytorch3d_batch} --size {args.size}")


if __name__ == "__main__":
    main()
