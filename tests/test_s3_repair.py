"""Damage on a real S3 endpoint (moto's server on loopback, through s3fs): a copy of a clean
store with flipped chunks, named by ``handlabel verify`` and repaired by ``--repair`` on
separate Dask worker processes. The chunks are the labels' (the repair reruns reconstruct
and export): finding, removing and redoing an object on S3 is the same code for every
array, and the repair of the whole chain, from the frames on, is tested on a local store
(``tests/test_integrity.py``), where it costs a third of the time."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from handlabel.config import StorageConfig
from handlabel.flows.cli import app

from .conftest import BUCKET
from .pipeline_runs import CONFIG


def test_damage_on_s3_is_named_and_repaired(s3_options, dask_cluster, gesture_store, tmp_path):
    """A copy of a clean store on S3 with two flipped label chunks: verify names each, and
    --repair gives back the clean arrays."""
    import s3fs
    import yaml

    from .test_integrity import arrays, flip_bytes

    local = gesture_store  # made with CONFIG on the session's Dask workers; only read here
    config = CONFIG.model_copy(update={"storage": StorageConfig(options={"s3": s3_options})})
    fs = s3fs.S3FileSystem(**s3_options, skip_instance_cache=True)
    remote = f"{BUCKET}/damaged"
    fs.put(str(local), remote, recursive=True)
    video = next(p.name for p in (local / "videos").iterdir() if p.is_dir())
    damaged_chunks = (("reconstruct/joints_3d", "c/1/0/0/0"),
                      ("reconstruct/keypoints_2d", "c/2/0/0/0"))
    for array, chunk in damaged_chunks:
        key = f"{remote}/videos/{video}/{array}/{chunk}"
        damaged = tmp_path / "object"
        damaged.write_bytes(fs.cat_file(key))
        flip_bytes(damaged)
        fs.pipe_file(key, damaged.read_bytes())
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    store = f"s3://{remote}"
    result = CliRunner().invoke(app, ["verify", store, "-c", str(config_file)])
    assert result.exit_code == 1, result.output
    for array, chunk in damaged_chunks:
        assert f"damaged: videos/{video}/{array} chunk {chunk.split('/')[1]}: checksum " \
            "mismatch" in result.output
    repaired = CliRunner().invoke(app, ["verify", store, "--repair", "-c", str(config_file),
                                        "--dask-address", dask_cluster.scheduler_address])
    assert repaired.exit_code == 0, repaired.output
    got, want = arrays(store), arrays(str(local))
    assert got.keys() == want.keys()
    for path, values in want.items():
        assert np.array_equal(got[path], values, equal_nan=values.dtype.kind == "f"), path
