"""Both renderers on analytic cases with known answers (a sphere, a flat square at a known
depth), their gradients, a silhouette fit, and pytorch3d against DEODR on a posed hand.

Coverage convention (both backends): a pixel whose centre is inside the projected mesh is
covered, and a band of sigma = 1 px outside the outline ramps linearly to 0, so the area is
the projected outline's plus perimeter x sigma / 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import ConvexHull

from handlabel.models.render import Light
from handlabel.models.render.deodr_backend import DeodrRenderer

F_PX, SIZE, RADIUS, Z = 500.0, 128, 0.05, 0.5
K = torch.tensor([[[F_PX, 0.0, (SIZE - 1) / 2], [0.0, F_PX, (SIZE - 1) / 2], [0.0, 0.0, 1.0]]])


def sphere(center=(0.0, 0.0, Z), radius=RADIUS):
    mesh = trimesh.creation.icosphere(subdivisions=3)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float64) * radius + torch.tensor(center)
    return vertices[None], torch.as_tensor(np.asarray(mesh.faces), dtype=torch.long)


def pytorch3d_renderer():
    pytest.importorskip("pytorch3d", reason="the optional pytorch3d extra is not installed "
                        "(HANDLABEL_PYTORCH3D=1 make setup)")
    from handlabel.models.render.pytorch3d_backend import Pytorch3dRenderer

    return Pytorch3dRenderer()


BACKENDS = {"deodr": DeodrRenderer, "pytorch3d": pytorch3d_renderer}


@pytest.fixture(params=sorted(BACKENDS))
def renderer(request):
    return BACKENDS[request.param]()


def render(vertices, faces, albedo=0.6, light=None, renderer=None, camera=K):
    colors = torch.full_like(vertices, albedo)
    light = light or Light.ambient_only(1, 0.8)
    return (renderer or DeodrRenderer()).render(vertices, faces, colors, camera, SIZE, SIZE,
                                                light)


def outline(vertices: torch.Tensor, camera: torch.Tensor = K) -> ConvexHull:
    """The convex outline of a convex mesh's projected vertices, in pixels."""
    uvw = vertices[0] @ camera[0].double().T
    return ConvexHull((uvw[:, :2] / uvw[:, 2:]).numpy())


def test_sphere_area_is_its_projected_outline_plus_half_a_pixel_band(renderer):
    vertices, faces = sphere()
    hull = outline(vertices)  # ConvexHull: .volume is the area, .area the perimeter in 2D
    expected = hull.volume + hull.area * 1.0 / 2  # sigma = 1 px
    radius_px = F_PX * RADIUS / math.sqrt(Z**2 - RADIUS**2)  # the true sphere's tangent cone
    assert hull.volume == pytest.approx(math.pi * radius_px**2, rel=0.01)
    assert render(vertices, faces, renderer=renderer).silhouette.sum().item() == \
        pytest.approx(expected, rel=0.01)


def test_a_flat_square_at_a_known_depth_covers_its_projected_area(renderer):
    side, depth, turn = 0.06, 0.5, math.radians(30)  # turned: DEODR draws no band on edges
    rotation = torch.tensor([[math.cos(turn), -math.sin(turn), 0.0],  # along a pixel axis
                             [math.sin(turn), math.cos(turn), 0.0], [0.0, 0.0, 1.0]],
                            dtype=torch.float64)
    corners = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
                           dtype=torch.float64) * side / 2
    vertices = (corners @ rotation.T + torch.tensor([0.0, 0.0, depth]))[None]
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])  # facing the camera
    side_px = F_PX * side / depth
    out = render(vertices, faces, renderer=renderer)
    assert out.silhouette.sum().item() == pytest.approx(side_px**2 + 4 * side_px / 2, rel=0.01)
    assert render(vertices, faces[:, [0, 2, 1]], renderer=renderer).silhouette.sum() == 0, \
        "a face turned away from the camera is culled"
    inside = out.silhouette[0] == 1
    assert out.depth[0][inside].sub(depth).abs().max().item() < 1e-6


def test_pixel_centres_are_at_integers_so_the_principal_point_is_the_centroid(renderer):
    vertices, faces = sphere()
    camera = K.clone()
    camera[0, 0, 2], camera[0, 1, 2] = 60.3, 67.0
    coverage = render(vertices, faces, renderer=renderer, camera=camera).silhouette[0]
    rows, columns = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE),
                                   indexing="ij")
    total = coverage.sum()
    assert (coverage * columns).sum().item() / total.item() == pytest.approx(60.3, abs=0.05)
    assert (coverage * rows).sum().item() / total.item() == pytest.approx(67.0, abs=0.05)


def test_sphere_depth_and_ambient_colour(renderer):
    vertices, faces = sphere()
    out = render(vertices, faces, renderer=renderer)
    centre = SIZE // 2
    assert out.depth[0, centre, centre].item() == pytest.approx(Z - RADIUS, abs=1e-3)
    assert out.depth[0, 0, 0].item() == 0 and out.silhouette[0, 0, 0].item() == 0
    np.testing.assert_allclose(out.image[0, centre, centre].detach(), [0.48] * 3, atol=1e-5)


def test_a_mesh_behind_the_camera_is_counted_as_unrendered_not_passed_off_as_blank(renderer):
    front, faces = sphere()
    behind, _ = sphere(center=(0.0, 0.0, -Z))
    colors = torch.full((2, front.shape[1], 3), 0.6, dtype=torch.float64)
    out = renderer.render(torch.cat([front, behind]), faces, colors, K.expand(2, 3, 3),
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


def test_directional_light_brightens_faces_towards_it(renderer):
    vertices, faces = sphere()
    light = Light(torch.zeros(1, 3), torch.ones(1, 3), torch.tensor([[0.0, 0.0, 1.0]]))
    image = render(vertices, faces, albedo=1.0, light=light, renderer=renderer).image[0].detach()
    centre, rim = image[SIZE // 2, SIZE // 2, 0], image[SIZE // 2, SIZE // 2 + 45, 0]
    assert centre > 0.95 and rim < 0.6 * centre


def test_silhouette_gradient_matches_finite_differences(renderer):
    vertices, faces = sphere()
    centre = torch.tensor([0.0, 0.0, Z])

    def area(scale):
        return render((vertices - centre) * scale + centre, faces,
                      renderer=renderer).silhouette.sum()

    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    area(scale).backward()
    eps = 0.01
    numeric = (area(torch.tensor(1 + eps)) - area(torch.tensor(1 - eps))).item() / (2 * eps)
    assert scale.grad.item() == pytest.approx(numeric, rel=0.05)
    assert numeric > 0


def test_colour_gradient_reaches_every_visible_vertex_colour(renderer):
    vertices, faces = sphere()
    colors = torch.full_like(vertices, 0.5, requires_grad=True)
    out = renderer.render(vertices, faces, colors, K, SIZE, SIZE, Light.ambient_only(1))
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


def test_auto_is_deodr_and_pytorch3d_only_when_asked_for():
    from handlabel.models.render import make_renderer, renderer_name

    assert make_renderer().name == "deodr" and renderer_name("auto") == "deodr"
    assert renderer_name("pytorch3d") == "pytorch3d"
    with pytest.raises(ValueError, match="unknown renderer"):
        make_renderer("opengl")


def posed_hand():
    """The default hand in a fixed random pose, 45 cm away, filling a 128 px crop."""
    from handlabel.models.hand.default import DefaultHandModel

    hand = DefaultHandModel()
    pose = torch.randn(1, 15, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    out = hand(torch.tensor([[0.3, 2.8, 0.2]]), pose, torch.zeros(1, hand.n_shape))
    vertices = out.vertices.double()
    vertices = vertices - vertices.mean(1, keepdim=True) + torch.tensor([0.0, 0.0, 0.45])
    camera = torch.tensor([[[300.0, 0, 63.5], [0, 300.0, 63.5], [0, 0, 1]]])
    return vertices, hand.faces, camera


def test_pytorch3d_draws_the_posed_hand_as_deodr_does():
    """Silhouette, depth and colour agree, and a silhouette loss pulls the vertices the same
    way: what a training step would do with either backend."""
    vertices, faces, camera = posed_hand()
    colors = torch.full_like(vertices, 0.7)
    light = Light(torch.full((1, 3), 0.4), torch.full((1, 3), 0.6),
                  torch.nn.functional.normalize(torch.tensor([[0.3, 0.4, 1.0]]), dim=-1))
    outputs, gradients = [], []
    for renderer in (DeodrRenderer(), pytorch3d_renderer()):
        moving = vertices.clone().requires_grad_(True)
        out = renderer.render(moving, faces, colors, camera, 128, 128, light)
        out.silhouette.sum().backward()
        outputs.append(out)
        gradients.append(moving.grad.flatten())
    (deodr, p3d), (a, b) = outputs, [out.silhouette[0].detach() for out in outputs]
    assert b.sum().item() == pytest.approx(a.sum().item(), rel=0.01)
    assert (torch.minimum(a, b).sum() / torch.maximum(a, b).sum()).item() > 0.99
    both = (a == 1) & (b == 1)
    depth = (deodr.depth[0] - p3d.depth[0]).detach()[both].abs()
    assert depth.median().item() < 5e-4  # metres
    colour = (deodr.image[0] - p3d.image[0]).detach()[both].abs()
    assert colour.mean().item() < 0.01
    assert torch.nn.functional.cosine_similarity(*gradients, dim=0).item() > 0.97
