"""The embedded default hand model: a closed hand-shaped surface with known kinematics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from handlabel.models.hand import mirror
from handlabel.models.hand.anatomy import flexion_axes, rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.mano import TO_FILE_ORDER
from handlabel.models.render import Light
from handlabel.models.render.deodr_backend import DeodrRenderer

WRIST, THUMB_TIP, INDEX_MCP, INDEX_TIP, MIDDLE_MCP, MIDDLE_TIP, PINKY_MCP = 0, 4, 5, 8, 9, 12, 17


@pytest.fixture(scope="module")
def model():
    return DefaultHandModel()


def rest(model, batch=1):
    return torch.zeros(batch, 3), torch.zeros(batch, 15, 3), torch.zeros(batch, model.n_shape)


def flexed(model, joint: int, degrees: float) -> torch.Tensor:
    pose = torch.zeros(1, 15, 3)
    pose[0, joint - 1] = torch.tensor(flexion_axes()[joint]) * np.radians(degrees)
    return pose


def test_surface_is_closed_and_about_800_vertices(model):
    mesh = trimesh.Trimesh(model.v_template.numpy(), model.faces.numpy(), process=False)
    assert 700 <= len(mesh.vertices) <= 900 and mesh.is_watertight
    assert mesh.euler_number == 2 and mesh.volume > 0  # one closed, outward-facing surface
    assert 200e-6 < mesh.volume < 500e-6  # m^3: an adult hand with a short wrist stub
    assert model.n_shape == 10


def test_rest_pose_and_proportions(model):
    out = model(*rest(model))
    np.testing.assert_allclose(out.vertices[0], model.v_template, atol=1e-6)
    skeleton = np.concatenate([rest_skeleton()[:16], model.v_template[model.tip_vertices]])
    np.testing.assert_allclose(out.joints[0], skeleton[list(TO_FILE_ORDER)], atol=1e-5)
    joints = out.joints[0]
    assert 0.16 < torch.linalg.norm(joints[MIDDLE_TIP] - joints[WRIST]) < 0.20  # hand length
    assert 0.05 < torch.linalg.norm(joints[INDEX_MCP] - joints[PINKY_MCP]) < 0.07
    weights = model.weights
    assert (weights >= 0).all() and torch.allclose(weights.sum(1), torch.ones(len(weights)))


def test_flexion_bends_fingers_towards_the_palm_and_keeps_bones_rigid(model):
    base = model(*rest(model)).joints[0]
    pose = flexed(model, 1, 60.0) + flexed(model, 2, 60.0) + flexed(model, 4, 45.0)
    out = model(torch.zeros(1, 3), pose, torch.zeros(1, model.n_shape)).joints[0]
    assert out[INDEX_TIP, 2] > base[INDEX_TIP, 2] + 0.03  # palm faces +z: a right hand
    for a, b in [(5, 6), (6, 7), (9, 10), (0, 5), (0, 9)]:
        assert torch.linalg.norm(out[a] - out[b]).item() == pytest.approx(
            torch.linalg.norm(base[a] - base[b]).item(), abs=1e-5)
    tip_bone = torch.linalg.norm(out[INDEX_TIP] - out[7]) - torch.linalg.norm(
        base[INDEX_TIP] - base[7])
    assert abs(tip_bone.item()) < 1e-3  # the tip vertex moves with its phalanx


def test_shape_coefficients_change_what_they_name(model):
    def measure(name, value):
        betas = torch.zeros(1, model.n_shape)
        betas[0, model.shape_names.index(name)] = value
        out = model(torch.zeros(1, 3), torch.zeros(1, 15, 3), betas)
        joints = out.joints[0]
        return out, torch.linalg.norm(joints[MIDDLE_TIP] - joints[MIDDLE_MCP]).item()

    _, finger = measure("scale", 0.0)
    _, scaled = measure("scale", 1.0)
    assert scaled / finger == pytest.approx(1.08, abs=0.01)
    _, longer = measure("finger_length", 1.0)
    assert 1.04 < longer / finger < 1.08
    thin, _ = measure("finger_thickness", -1.0)
    thick, _ = measure("finger_thickness", 1.0)
    volume = [trimesh.Trimesh(o.vertices[0].numpy(), model.faces.numpy()).volume
              for o in (thin, thick)]
    assert volume[1] > volume[0]


def test_gradients_reach_rotation_pose_and_shape(model):
    orient = torch.full((2, 3), 0.1, requires_grad=True)
    pose = torch.full((2, 15, 3), 0.05, requires_grad=True)
    betas = torch.zeros(2, model.n_shape, requires_grad=True)
    out = model(orient, pose, betas)
    (out.vertices.sum() + out.joints.sum()).backward()
    for tensor in (orient, pose, betas):
        assert tensor.grad.abs().sum() > 0


def test_mirrored_faces_keep_a_mirrored_mesh_outward(model):
    from handlabel.models.hand.base import mirrored_faces

    right = model(*rest(model))
    left = mirror(right)
    volume = trimesh.Trimesh(right.vertices[0].numpy(), model.faces.numpy()).volume
    flipped = trimesh.Trimesh(left.vertices[0].numpy(), mirrored_faces(model.faces).numpy())
    same_faces = trimesh.Trimesh(left.vertices[0].numpy(), model.faces.numpy())
    assert flipped.volume == pytest.approx(volume, rel=1e-5) and same_faces.volume < 0


def test_mirror_makes_a_left_hand(model):
    def handedness(joints):
        across = joints[INDEX_MCP] - joints[PINKY_MCP]
        along = joints[MIDDLE_MCP] - joints[WRIST]
        return torch.sign(torch.linalg.cross(across, along, dim=0)[2]).item()

    right = model(*rest(model))
    assert handedness(right.joints[0]) == 1 and handedness(mirror(right).joints[0]) == -1


def test_silhouette_fit_recovers_a_known_finger_pose_and_translation(model):
    size, focal = 96, 220.0
    K = torch.tensor([[[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]]])
    view = torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]], dtype=torch.float64)
    renderer, light = DeodrRenderer(), Light.ambient_only(1)
    axis = torch.tensor(flexion_axes()[1], dtype=torch.float32)

    def silhouette(angle, shift):
        pose = torch.zeros(1, 15, 3)
        pose[0, 0] = axis * angle
        vertices = model(torch.zeros(1, 3), pose, torch.zeros(1, 10)).vertices[0].double()
        vertices = vertices @ view.T + torch.tensor([0.0, 0.06, 0.45]) + shift
        colors = torch.ones_like(vertices)[None]
        return renderer.render(vertices[None], model.faces, colors, K, size, size,
                               light).silhouette

    true_angle, true_shift = 0.7, torch.tensor([0.006, -0.004, 0.0], dtype=torch.float64)
    target = silhouette(torch.tensor(true_angle), true_shift).detach()
    angle = torch.tensor(0.2, requires_grad=True)
    shift = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([{"params": [angle], "lr": 0.05},
                                  {"params": [shift], "lr": 1e-3}])
    for _ in range(80):
        optimiser.zero_grad()
        loss = ((silhouette(angle, shift) - target) ** 2).sum()
        loss.backward()
        optimiser.step()
    assert angle.item() == pytest.approx(true_angle, abs=0.1)  # about 6 degrees
    np.testing.assert_allclose(shift[:2].detach(), true_shift[:2], atol=1.5e-3)


def test_joint_gradients_match_finite_differences(model):
    def index_tip(angle, beta):
        pose = torch.zeros(1, 15, 3, dtype=torch.float64)
        pose[0, 1] = torch.tensor(flexion_axes()[2]) * angle  # index PIP
        betas = torch.zeros(1, model.n_shape, dtype=torch.float64)
        betas[0, 1] = beta  # finger length
        return model.double()(torch.zeros(1, 3, dtype=torch.float64), pose, betas).joints[
            0, INDEX_TIP]

    angle = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    direction = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    (index_tip(angle, beta) @ direction).backward()
    eps = 1e-6
    with torch.no_grad():
        d_angle = ((index_tip(angle + eps, beta) - index_tip(angle - eps, beta)) @ direction
                   ) / (2 * eps)
        d_beta = ((index_tip(angle, beta + eps) - index_tip(angle, beta - eps)) @ direction
                  ) / (2 * eps)
    model.float()
    assert angle.grad.item() == pytest.approx(d_angle.item(), rel=1e-5)
    assert beta.grad.item() == pytest.approx(d_beta.item(), rel=1e-5)


def test_joint_offsets_move_the_rest_skeleton_and_the_mesh_follows_its_bones(model):
    """A personal skeleton: offsets move exactly the joints they name (file order: the
    model's joint k is ``TO_FILE_ORDER.index(k)``), the fingertip follows its distal joint,
    the mesh moves with the bones it is skinned to, and joints_only agrees with forward."""
    zero_pose = (torch.zeros(1, 3), torch.zeros(1, 15, 3), torch.zeros(1, model.n_shape))
    plain = model(*zero_pose)
    offsets = torch.zeros(1, len(model.parents), 3)
    index_pip = 2  # the model's order: wrist, index MCP, PIP, DIP, middle ...; tips last
    offsets[0, index_pip] = torch.tensor([0.0, 0.01, 0.0])
    moved = model(*zero_pose, offsets)
    shift = (moved.joints - plain.joints)[0]
    pip, dip, tip = (TO_FILE_ORDER.index(k) for k in (index_pip, 3, 17))
    assert torch.allclose(shift[pip], torch.tensor([0.0, 0.01, 0.0]), atol=1e-6)
    others = [j for j in range(21) if j not in (pip, tip)]
    assert shift[others].abs().max() < 1e-6
    # the tip is skinned to the distal bone, whose rest joint did not move
    assert shift[tip].norm() < 0.01 and shift[dip].norm() < 1e-6
    vertex_shift = (moved.vertices - plain.vertices)[0].norm(dim=-1)
    on_bone = model.weights[:, index_pip] > 0.9
    assert torch.allclose(vertex_shift[on_bone], torch.tensor(0.01), atol=1e-3)
    assert vertex_shift[model.weights[:, index_pip] < 1e-3].max() <= 1e-5  # weight x 1 cm
    posed = (torch.randn(1, 3) * 0.5, flexed(model, 5, 40.0), torch.zeros(1, model.n_shape))
    assert torch.allclose(model.joints_only(*posed, offsets), model(*posed, offsets).joints,
                          atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 16, 3\)"):
        model(*zero_pose, torch.zeros(1, 21, 3))


def test_module_examples():
    import doctest

    from handlabel.models.hand import lbs

    results = doctest.testmod(lbs)
    assert results.attempted > 0 and results.failed == 0
