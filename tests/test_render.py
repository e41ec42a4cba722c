"""The DEODR renderer on spheres with known answers, its gradients, and a silhouette fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from handlabel.models.render import Light
from handlabel.models.render.deodr_backend import DeodrRenderer

F_PX, SIZE, RADIUS, Z = 500.0, 128, 0.05, 0.5
K = torch.tensor([[[F_PX, 0.0, (SIZE - 1) / 2], [0.0, F_PX, (SIZE - 1) / 2], [0.0, 0.0, 1.0]]])


def sphere(center=(0.0, 0.0, Z), radius=RADIUS):
    mesh = trimesh.creation.icosphere(subdivisions=3)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float64) * radius + torch.tensor(center)
    return vertices[None], torch.as_tensor(np.asarray(mesh.faces), dtype=torch.long)


def render(vertices, faces, albedo=0.6, light=None):
    colors = torch.full_like(vertices, albedo)
    light = light or Light.ambient_only(1, 0.8)
    return DeodrRenderer().render(vertices, faces, colors, K, SIZE, SIZE, light)


def test_sphere_silhouette_depth_and_ambient_colour():
    vertices, faces = sphere()
    out = render(vertices, faces)
    radius_px = F_PX * RADIUS / math.sqrt(Z**2 - RADIUS**2)  # tangent cone of the sphere
    assert out.silhouette.sum().item() == pytest.approx(math.pi * radius_px**2, rel=0.03)
    centre = SIZE // 2
    assert out.depth[0, centre, centre].item() == pytest.approx(Z - RADIUS, abs=1e-3)
    assert out.depth[0, 0, 0].item() == 0 and out.silhouette[0, 0, 0].item() == 0
    np.testing.assert_allclose(out.image[0, centre, centre].detach(), [0.48] * 3, atol=1e-6)


def test_a_mesh_behind_the_camera_is_counted_as_unrendered_not_passed_off_as_blank():
    front, faces = sphere()
    behind, _ = sphere(center=(0.0, 0.0, -Z))
    colors = torch.full((2, front.shape[1], 3), 0.6, dtype=torch.float64)
    out = DeodrRenderer().render(torch.cat([front, behind]), faces, colors, K.expand(2, 3, 3),
                                 SIZE, SIZE, Light.ambient_only(2, 0.8))
    assert out.unrendered.tolist() == [False, True]
    assert out.silhouette[1].sum() == 0 and out.silhouette[0].sum() > 0


def test_the_objective_counts_the_meshes_it_could_not_render():
    from dataclasses import replace

    from handlabel.models.hand.default import DefaultHandModel
    from handlabel.models.hand.limits import model_limit_frames
    from handlabel.models.losses.objective import S2HandObjective, Supervision

    from .networks import CROP_K, tiny_network

    hand = DefaultHandModel()
    net = tiny_network(hand)
    crop_K = CROP_K.expand(3, 3, 3).clone()
    with torch.no_grad():
        pred = net(torch.rand(3, 64, 64, 3), crop_K)
    moved = pred.vertices.clone()
    moved[1:] -= torch.tensor([0.0, 0.0, 5.0])  # two of the three hands behind the camera
    objective = S2HandObjective(hand.faces, model_limit_frames(hand), {"photometric": 5e-3},
                                DeodrRenderer(), 32)
    target = Supervision(torch.rand(3, 64, 64, 3), pred.joints_2d, torch.ones(3, 21),
                         torch.ones(3), crop_K)
    assert int(objective(replace(pred, vertices=moved), target)["unrendered"]) == 2
    assert int(objective(pred, target)["unrendered"]) == 0


def test_directional_light_brightens_faces_towards_it():
    vertices, faces = sphere()
    light = Light(torch.zeros(1, 3), torch.ones(1, 3), torch.tensor([[0.0, 0.0, 1.0]]))
    image = render(vertices, faces, albedo=1.0, light=light).image[0].detach()
    centre, rim = image[SIZE // 2, SIZE // 2, 0], image[SIZE // 2, SIZE // 2 + 45, 0]
    assert centre > 0.95 and rim < 0.6 * centre


def test_silhouette_gradient_matches_finite_differences():
    vertices, faces = sphere()
    centre = torch.tensor([0.0, 0.0, Z])

    def area(scale):
        return render((vertices - centre) * scale + centre, faces).silhouette.sum()

    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    area(scale).backward()
    eps = 0.01
    numeric = (area(torch.tensor(1 + eps)) - area(torch.tensor(1 - eps))).item() / (2 * eps)
    assert scale.grad.item() == pytest.approx(numeric, rel=0.05)
    assert numeric > 0


def test_colour_gradient_reaches_every_visible_vertex_colour():
    vertices, faces = sphere()
    colors = torch.full_like(vertices, 0.5, requires_grad=True)
    out = DeodrRenderer().render(vertices, faces, colors, K, SIZE, SIZE, Light.ambient_only(1))
    out.image.sum().backward()
    front = vertices[0, :, 2] < Z - 0.02
    assert (colors.grad[0, front].abs().sum(-1) > 0).all()
    assert (colors.grad[0, vertices[0, :, 2] > Z + 0.01] == 0).all()  # back faces are hidden


def test_silhouette_fit_recovers_a_known_translation():
    vertices, faces = sphere()
    truth = torch.tensor([0.012, -0.008, 0.0], dtype=torch.float64)
    target = render(vertices + truth, faces).silhouette.detach()
    shift = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([shift], lr=2e-3)
    for _ in range(60):
        optimiser.zero_grad()
        loss = ((render(vertices + shift, faces).silhouette - target) ** 2).sum()
        loss.backward()
        optimiser.step()
    np.testing.assert_allclose(shift[:2].detach(), truth[:2], atol=1e-3)


def test_make_renderer_picks_an_available_backend():
    import importlib.util

    from handlabel.models.render import make_renderer

    expected = "pytorch3d" if importlib.util.find_spec("pytorch3d") else "deodr"
    assert make_renderer().name == expected and make_renderer("deodr").name == "deodr"
    with pytest.raises(ValueError, match="unknown renderer"):
        make_renderer("opengl")


def test_pytorch3d_matches_deodr():
    pytest.importorskip("pytorch3d", reason="pytorch3d is not installable here (no PyPI package)")
    from handlabel.models.render.pytorch3d_backend import Pytorch3dRenderer

    vertices, faces = sphere()
    colors = torch.full_like(vertices, 0.6)
    light = Light.ambient_only(1, 0.8)
    reference = DeodrRenderer().render(vertices, faces, colors, K, SIZE, SIZE, light)
    out = Pytorch3dRenderer().render(vertices, faces, colors, K, SIZE, SIZE, light)
    assert out.silhouette.sum().item() == pytest.approx(reference.silhouette.sum().item(),
                                                        rel=0.03)
    centre = SIZE // 2
    assert out.depth[0, centre, centre].item() == pytest.approx(Z - RADIUS, abs=1e-3)
    np.testing.assert_allclose(out.image[0, centre, centre].detach(), [0.48] * 3, atol=1e-3)
    shifted = Pytorch3dRenderer().render(vertices + torch.tensor([0.01, 0, 0]), faces, colors,
                                         K, SIZE, SIZE, light)
    columns = torch.arange(SIZE, dtype=torch.float64)
    moved = ((shifted.silhouette[0] * columns).sum() / shifted.silhouette[0].sum()
             - (out.silhouette[0] * columns).sum() / out.silhouette[0].sum())
    assert moved.item() == pytest.approx(F_PX * 0.01 / Z, rel=0.1)  # +x is image right
