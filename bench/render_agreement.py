"""pytorch3d against DEODR: analytic areas, and the default hand in random poses.

    .venv/bin/python bench/render_agreement.py [--poses 8] [--size 128]
                                               [--picture docs/render_backends.png]

Analytic rows: the projected area of an icosphere (its vertices' convex outline) and of a
flat square turned 30 degrees at 0.5 m, plus the 1 px antialiasing band both backends draw
outside the outline (perimeter / 2). Hand rows: the default hand in random poses (seeded),
45 cm away, lit by an ambient and a directional light; silhouette soft IoU, depth and
colour differences where both cover a pixel fully, and the cosine between the vertex
gradients of a silhouette loss. The picture shows pose 0: DEODR, pytorch3d, |difference| x 5.
Needs the pytorch3d extra (HANDLABEL_PYTORCH3D=1 make setup).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import trimesh
from PIL import Image
from scipy.spatial import ConvexHull

from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.render import Light, make_renderer

BACKENDS = ("deodr", "pytorch3d")


def camera(size: int, focal: float) -> torch.Tensor:
    return torch.tensor([[[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]]],
                        dtype=torch.float64)


def analytic_rows(size: int) -> list[tuple[str, float, dict[str, float]]]:
    K, light = camera(size, 500.0), Light.ambient_only(1, 0.8)
    mesh = trimesh.creation.icosphere(subdivisions=3)
    sphere = torch.tensor(mesh.vertices)[None] * 0.05 + torch.tensor([0.0, 0.0, 0.5])
    uvw = sphere[0] @ K[0].T
    hull = ConvexHull((uvw[:, :2] / uvw[:, 2:]).numpy())
    turn = math.radians(30)
    rotation = torch.tensor([[math.cos(turn), -math.sin(turn), 0], [math.sin(turn),
                             math.cos(turn), 0], [0, 0, 1]], dtype=torch.float64)
    square = (torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
                           dtype=torch.float64) * 0.03 @ rotation.T + torch.tensor([0, 0, 0.5]))
    side_px = 500.0 * 0.06 / 0.5
    cases = [("icosphere, 642 vertices", sphere, torch.as_tensor(np.asarray(mesh.faces)),
              hull.volume + hull.area / 2),
             ("square turned 30 deg", square[None], torch.tensor([[0, 2, 1], [0, 3, 2]]),
              side_px**2 + 2 * side_px)]
    rows = []
    for name, vertices, faces, expected in cases:
        areas = {backend: make_renderer(backend).render(
            vertices, faces, torch.full_like(vertices, 0.6), K, size, size, light
        ).silhouette.sum().item() for backend in BACKENDS}
        rows.append((name, expected, areas))
    return rows


def posed_hand(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    hand = DefaultHandModel()
    generator = torch.Generator().manual_seed(seed)
    pose = torch.randn(1, 15, 3, generator=generator) * 0.3
    orient = torch.tensor([[0.3, 2.8, 0.2]]) + torch.randn(1, 3, generator=generator) * 0.4
    vertices = hand(orient, pose, torch.zeros(1, hand.n_shape)).vertices.double()
    return vertices - vertices.mean(1, keepdim=True) + torch.tensor([0, 0, 0.45]), hand.faces


def compare_hand(seed: int, size: int) -> tuple[dict[str, float], np.ndarray]:
    vertices, faces = posed_hand(seed)
    K = camera(size, size * 300 / 128)
    light = Light(torch.full((1, 3), 0.4), torch.full((1, 3), 0.6),
                  torch.nn.functional.normalize(torch.tensor([[0.3, 0.4, 1.0]]), dim=-1))
    outputs, gradients = [], []
    for backend in BACKENDS:
        moving = vertices.clone().requires_grad_(True)
        out = make_renderer(backend).render(moving, faces, torch.full_like(vertices, 0.7), K,
                                            size, size, light)
        out.silhouette.sum().backward()
        outputs.append(out)
        gradients.append(moving.grad.flatten())
    a, b = (out.silhouette[0].detach() for out in outputs)
    both = (a == 1) & (b == 1)
    images = [out.image[0].detach() for out in outputs]
    row = {"area": (b.sum() / a.sum() - 1).item() * 100,
           "iou": (torch.minimum(a, b).sum() / torch.maximum(a, b).sum()).item(),
           "depth_mm": (outputs[0].depth[0] - outputs[1].depth[0]).detach()[both].abs()
           .median().item() * 1000,
           "colour": (images[0] - images[1])[both].abs().mean().item(),
           "gradient_cos": torch.nn.functional.cosine_similarity(*gradients, dim=0).item()}
    picture = torch.cat([images[0], images[1], (images[0] - images[1]).abs() * 5], dim=1)
    return row, (picture.clamp(0, 1).numpy() * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poses", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--picture", default=None, help="write pose 0's renders as a PNG")
    args = parser.parse_args()

    print(f"\nArea in pixels at {args.size} px: expected (outline + perimeter / 2) and each "
          "backend\n")
    print("| mesh | expected | DEODR | pytorch3d |")
    print("|---|--:|--:|--:|")
    for name, expected, areas in analytic_rows(args.size):
        cells = " | ".join(f"{areas[b]:.1f} ({(areas[b] / expected - 1) * 100:+.2f}%)"
                           for b in BACKENDS)
        print(f"| {name} | {expected:.1f} | {cells} |")

    print(f"\nThe default hand in {args.poses} random poses at {args.size} px, pytorch3d "
          "against DEODR\n")
    print("| pose | area diff % | silhouette soft IoU | depth median mm | colour mean "
          "abs | silhouette-gradient cosine |")
    print("|--:|--:|--:|--:|--:|--:|")
    for seed in range(args.poses):
        row, picture = compare_hand(seed, args.size)
        print(f"| {seed} | {row['area']:+.2f} | {row['iou']:.4f} | {row['depth_mm']:.3f} | "
              f"{row['colour']:.4f} | {row['gradient_cos']:.3f} |")
        if seed == 0 and args.picture:
            Image.fromarray(picture).resize((picture.shape[1] * 2, picture.shape[0] * 2),
                                            Image.NEAREST).save(args.picture)
    print(f"\nReproduce: .venv/bin/python bench/render_agreement.py --poses {args.poses} "
          f"--size {args.size}")


if __name__ == "__main__":
    main()
