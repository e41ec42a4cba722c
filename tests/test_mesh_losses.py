"""Mesh losses on meshes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from handlabel.models.losses.mesh import (
    chamfer_distance,
    edge_length_loss,
    laplacian_loss,
    normal_consistency_loss,
    unique_edges,
)


def grid(n=5, bump=0.0):
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], 1)
    vertices[(n * n) // 2, 2] = bump
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [[a, b, d], [a, d, c]]
    return torch.tensor(vertices)[None], torch.tensor(faces)


def cube():
    box = trimesh.creation.box()
    return torch.tensor(box.vertices)[None], torch.as_tensor(np.asarray(box.faces))


def test_edges_of_a_cube():
    assert len(unique_edges(cube()[1])) == 18


def test_laplacian_is_zero_on_a_flat_grid_interior_and_grows_with_a_bump():
    flat, faces = grid()
    bumped, _ = grid(bump=1.0)
    assert laplacian_loss(flat, faces) < laplacian_loss(bumped, faces)
    # translation does not change it
    assert laplacian_loss(bumped + 3.0, faces).item() == pytest.approx(
        laplacian_loss(bumped, faces).item())
    smoothed = bumped.clone().requires_grad_(True)
    laplacian_loss(smoothed, faces).backward()
    assert smoothed.grad[0, 12, 2] > 0  # pushes the bump back down


def test_edge_loss_of_a_scaled_mesh():
    vertices, faces = cube()
    assert edge_length_loss(vertices, vertices, faces).item() == 0
    edges = unique_edges(faces)
    lengths = torch.linalg.norm(vertices[0, edges[:, 0]] - vertices[0, edges[:, 1]], dim=-1)
    expected = ((0.5 * lengths) ** 2).mean().item()
    assert edge_length_loss(vertices * 1.5, vertices, faces).item() == pytest.approx(expected)


def test_normal_consistency_of_plane_and_cube():
    flat, faces = grid()
    assert normal_consistency_loss(flat, faces).item() == pytest.approx(0.0, abs=1e-12)
    vertices, faces = cube()
    # 12 cube edges join perpendicular faces (1 - cos = 1), 6 diagonals join coplanar ones (0)
    assert normal_consistency_loss(vertices, faces).item() == pytest.approx(12 / 18)


def test_chamfer_of_identical_and_shifted_sets():
    points = torch.tensor(np.random.default_rng(0).uniform(0, 1, (1, 200, 3)))
    assert chamfer_distance(points, points).item() == 0
    shifted = points + torch.tensor([0.001, 0.0, 0.0], dtype=torch.float64)
    assert chamfer_distance(points, shifted).item() == pytest.approx(2 * 0.001**2, rel=1e-5)
    subset = points[:, :100]
    assert chamfer_distance(subset, points).item() > 0  # points has 100 with no partner


def test_photometric_loss_is_zero_for_a_match_and_ignores_outside_the_mask():
    from handlabel.models.losses.photometric import photometric_loss

    rng = torch.Generator().manual_seed(0)
    target = torch.rand(2, 32, 32, 3, generator=rng)
    mask = torch.zeros(2, 32, 32)
    mask[:, 8:24, 8:24] = 1.0
    weight = torch.ones(2)
    assert photometric_loss(target, target, mask, weight).item() == pytest.approx(0, abs=1e-6)
    outside = target.clone()
    outside[:, :2] = 0.0  # changed only beyond the SSIM window (radius 5) of the mask
    assert photometric_loss(outside, target, mask, weight).item() == pytest.approx(0, abs=1e-6)
    noisy = (target + 0.2 * torch.rand(2, 32, 32, 3, generator=rng)).clamp(0, 1)
    assert photometric_loss(noisy, target, mask, weight) > 0.05
    gated = photometric_loss(noisy, target, mask, torch.tensor([1.0, 0.0]))
    single = photometric_loss(noisy[:1], target[:1], mask[:1], torch.ones(1))
    assert gated.item() == pytest.approx(single.item())


def test_the_losses_match_pytorch3d_on_the_posed_hand_mesh():
    """Against pytorch3d.loss on the default hand: the same numbers (float32 precision) where
    the definitions are the same; pytorch3d's uniform Laplacian loss is the mean offset norm
    where ours is its mean square, so the offsets themselves are compared."""
    pytest.importorskip("pytorch3d", reason="the optional pytorch3d extra is not installed")
    from pytorch3d.loss import chamfer_distance as p3d_chamfer
    from pytorch3d.loss import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
    from pytorch3d.structures import Meshes

    from .test_render import posed_hand

    vertices, faces, _ = posed_hand()
    vertices = vertices.float()  # pytorch3d's Laplacian matrix is float32
    meshes = Meshes(verts=list(vertices), faces=[faces])
    offsets = -meshes.laplacian_packed() @ vertices[0]  # vertex - neighbour mean
    assert laplacian_loss(vertices, faces).item() == pytest.approx(
        (offsets**2).sum(-1).mean().item(), rel=1e-5)
    assert mesh_laplacian_smoothing(meshes, method="uniform").item() == pytest.approx(
        offsets.norm(dim=-1).mean().item(), rel=1e-5)
    # ours compares with a reference mesh; all-zero reference lengths = pytorch3d's target 0
    assert edge_length_loss(vertices, torch.zeros_like(vertices), faces).item() == \
        pytest.approx(mesh_edge_loss(meshes, target_length=0.0).item(), rel=1e-5)
    assert normal_consistency_loss(vertices, faces).item() == pytest.approx(
        mesh_normal_consistency(meshes).item(), rel=1e-5)
    other = vertices + torch.randn(vertices.shape, generator=torch.Generator().manual_seed(1),
                                   dtype=torch.float32) * 0.003
    assert chamfer_distance(vertices, other[:, ::2]).item() == pytest.approx(
        p3d_chamfer(vertices, other[:, ::2])[0].item(), rel=1e-5)
