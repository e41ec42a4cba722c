"""The dataset store of one job: a Zarr v3 group reached through fsspec, plus its manifest.

Layout (documented in docs/architecture.md)::

    STORE/zarr.json                    root group; attrs: handlabel layout version
    STORE/videos/<video_id>/           one group per video (id = content-hash prefix)
        frames (T, H, W, 3) uint8, timestamps (T,) s, chunk_done (n_chunks,) bool
        <stage>/ per-frame arrays of a stage (detect, weight) + chunk_done
    STORE/rigs/<name>/                 a calibrated rig: attrs (calibration, members, offsets)
        triangulate/, labels/          per rig frame arrays (the rig stage)
    STORE/models/<name>/              a trained model: checkpoint array, attrs
    STORE/metrics/<name>.parquet       its metrics per epoch
    STORE/manifest/<video_id>.parquet  one manifest row per video
"""

from __future__ import annotations

import functools

import zarr
import zarr.storage

from .frames import VideoFrames
from .fs import fresh_listing_options, is_local, normalise_url
from .manifest import Manifest
from .model_store import MODEL, ModelStore
from .stage_arrays import StageArrays

LAYOUT_VERSION = 1
EXPORTED_FILES = (("dataset table", "hands.parquet"),
                  ("COCO-WholeBody", "coco_wholebody_hands.json"),
                  ("FreiHAND-style", "freihand"), ("overlay video", "overlays/*.mp4"),
                  ("Rerun recording", "rerun/*.rrd"), ("rig table", "rigs/*/hands.parquet"),
                  ("report", "report.html"))


class StoreError(Exception):
    """A store that cannot be opened or is not a handlabel store."""


def _zarr_store(url: str):
    """LocalStore for local folders (fastest); fsspec for every other URL."""
    if is_local(url):
        return zarr.storage.LocalStore(url)
    return zarr.storage.FsspecStore.from_url(url, storage_options=fresh_listing_options(url))


class DatasetStore:
    """Zarr group + Parquet manifest at a local path or fsspec URL."""

    def __init__(self, url: str, *, create: bool = True):
        self.url = normalise_url(url)
        mode = "a" if create else "r+"
        try:
            self.root = zarr.open_group(_zarr_store(self.url), mode=mode, zarr_format=3)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise StoreError(f"{url}: no handlabel store here") from exc
        if "handlabel" not in self.root.attrs:
            if not create:
                raise StoreError(f"{url}: a Zarr group, but not a handlabel store")
            self.root.attrs["handlabel"] = {"layout_version": LAYOUT_VERSION}
        self.manifest = Manifest(self.url)

    @functools.cached_property
    def videos(self) -> zarr.Group:
        """The group of every video (opened once: each open reads its metadata, a request
        per read on an object store; its children are looked up afresh)."""
        return self.root.require_group("videos")

    def video(self, video_id: str) -> VideoFrames | None:
        """The stored arrays of a video, or None if it was never ingested."""
        group = self.videos.get(video_id)
        return VideoFrames(group) if isinstance(group, zarr.Group) else None

    def remove_video(self, video_id: str) -> None:
        """Delete a video's arrays (all its stages), if any."""
        if video_id in self.videos:
            del self.videos[video_id]

    def create_video(self, video_id: str, **kwargs) -> VideoFrames:
        return VideoFrames.create(self.videos, video_id, **kwargs)

    def stage(self, video_id: str, stage: str) -> StageArrays | None:
        """A stage's arrays for a video, or None if the stage never started on it."""
        group = self.videos.get(f"{video_id}/{stage}")
        return StageArrays(group) if isinstance(group, zarr.Group) else None

    def create_stage(self, video_id: str, stage: str, **kwargs) -> StageArrays:
        return StageArrays.create(self.videos[video_id], stage, **kwargs)

    def labels_version(self, video_id: str) -> str:
        """Which labels a video has now (what the stages that read them key on): the
        reconstruct stage's key and finish time, and, where they come from a later round of
        fit and training (``tasks/rounds.py``), that round and its model."""
        row = self.manifest.get(video_id)
        version = f"{row['reconstruct_config_hash']}@{row['reconstruct_finished']}"
        labels = self.stage(video_id, "reconstruct")
        if labels is not None and labels.attrs.get("round"):
            version += f"|round {labels.attrs['round']} {labels.attrs['round_model']}"
        return version

    def videos_done(self, stage: str, among: list[str] | None = None) -> list[str]:
        """The current (not superseded) videos whose ``stage`` is done, in manifest order
        (of ``among`` only, when given): the videos the stage after it takes."""
        table = self.manifest.table()
        current = table["superseded_by"].isna()
        done = table.loc[current & (table[f"{stage}_state"] == "done"), "video_id"].tolist()
        return done if among is None else [v for v in done if v in set(among)]

    def rig_names(self) -> list[str]:
        group = self.root.get("rigs")
        return sorted(group.group_keys()) if isinstance(group, zarr.Group) else []

    def rig(self, name: str) -> zarr.Group | None:
        """A rig's group (attrs: its calibration and members), or None if never registered."""
        group = self.root.get(f"rigs/{name}")
        return group if isinstance(group, zarr.Group) else None

    def register_rig(self, name: str, attrs: dict) -> zarr.Group:
        """The rig's group with these attrs; its arrays are dropped when the attrs changed."""
        group = self.rig(name)
        if group is not None and {k: v for k, v in group.attrs.items()
                                  if k != "export_version"} == attrs:
            return group
        return self.root.require_group("rigs").create_group(name, overwrite=True,
                                                            attributes=attrs)

    def rig_stage(self, name: str, stage: str) -> StageArrays | None:
        group = self.root.get(f"rigs/{name}/{stage}")
        return StageArrays(group) if isinstance(group, zarr.Group) else None

    def create_rig_stage(self, name: str, stage: str, **kwargs) -> StageArrays:
        return StageArrays.create(self.root[f"rigs/{name}"], stage, **kwargs)

    def model(self, name: str = MODEL) -> ModelStore:
        """A trained model's checkpoints and metrics (created empty when new)."""
        return ModelStore(self.root, self.url, name)

    def exported_files(self) -> list[tuple[str, str]]:
        """(what, path) of each dataset file under ``export/`` that exists now."""
        from .fs import filesystem, join

        fs, root = filesystem(join(self.url, "export"))
        found = []
        for label, pattern in EXPORTED_FILES:
            found += [(label, path) for path in sorted(fs.glob(f"{root}/{pattern}"))]
        return found

    def videos_without_checksums(self) -> list[str]:
        """Videos whose frames were stored before chunk checksums (read unchecked)."""
        from .integrity import has_checksum

        return [video_id for video_id, group in self.videos.groups()
                if isinstance(group.get("frames"), zarr.Array)
                and not has_checksum(group["frames"])]

    def has_model(self, name: str = MODEL) -> bool:
        return isinstance(self.root.get(f"models/{name}"), zarr.Group)
