"""Read every stored chunk and manifest row of a store, name the damaged ones, and mark their
units to be redone.

A chunk object is damaged when its bytes fail their CRC-32C (checked on the raw object, no
decoding), when a chunk whose unit is recorded as done is missing, or, in arrays written
before checksums, when it does not decode. Repair removes the damaged objects, clears the
completion flags of their units (and of the same chunk in the stages that read it), and marks
the stage failed in the manifest, so that ``handlabel rerun --failed-only`` redoes exactly
those units from their sources and what depends on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow.parquet as pq
import zarr

from .fs import configure_filesystems, filesystem
from .integrity import chunk_key, has_checksum, intact
from .manifest import SCHEMA, STAGES, StageState
from .model_store import MODEL
from .store import DatasetStore

# which stage writes each group of a video, and the chunked stages that read its chunks
VIDEO_ARRAYS_STAGE = "ingest"
GROUP_STAGE = {"detect": "detect", "weight": "weight", "reconstruct": "reconstruct",
               "network": "reconstruct"}
READERS = {"ingest": ("detect", "network", "reconstruct"), "detect": ("network", "reconstruct"),
           "weight": ("reconstruct",), "reconstruct": (), "train": ()}
# rounds of fit and training: a video's round groups (videos/<id>/rounds/) are remade from
# its labels (reconstruct, which redoes the rounds); a round's model is forgotten with the
# store's rounds record, so that the rounds run again
ROUNDS = "rounds"


@dataclass(frozen=True)
class ChunkFinding:
    """One chunk that verify found damaged."""

    array: str  # the array's path in the store, e.g. videos/<id>/frames
    index: int  # chunk index along the frame axis
    problem: str  # "checksum mismatch", "missing", or "unreadable: ..."


@dataclass(frozen=True)
class ArrayJob:
    """One array's chunk objects to check: the keys present and the indices that must be."""

    path: str  # the array's path in the store
    keys: tuple[str, ...]  # chunk keys present, relative to the array
    required: tuple[int, ...]  # chunk indices along axis 0 recorded as done
    checksummed: bool


@dataclass(frozen=True)
class Report:
    findings: list[ChunkFinding]
    manifest_damaged: list[str]  # manifest row files that do not read
    arrays: int
    objects: int
    unchecked_arrays: int  # written before checksums: decoded instead


def _arrays(group: zarr.Group, prefix: str = "") -> Iterator[tuple[str, zarr.Array]]:
    for name, member in group.members():
        path = f"{prefix}{name}"
        if isinstance(member, zarr.Array):
            yield path, member
        else:
            yield from _arrays(member, f"{path}/")


def _done_flags(group: zarr.Group) -> tuple[int, ...] | None:
    """Indices flagged done in a group's chunk_done record; None where it has none (or it
    does not read: then its own chunks are reported)."""
    done = group.get("chunk_done")
    if not isinstance(done, zarr.Array):
        return None
    try:
        return tuple(int(i) for i, flag in enumerate(done[:]) if flag)
    except ValueError:
        return ()


ZARR_GROUPS = ("videos", "rigs", "models")  # the store's other folders are not Zarr


def store_arrays(store: DatasetStore) -> Iterator[tuple[str, zarr.Array]]:
    for name in ZARR_GROUPS:
        group = store.root.get(name)
        if isinstance(group, zarr.Group):
            yield from _arrays(group, f"{name}/")


def plan_jobs(store: DatasetStore) -> list[ArrayJob]:
    """Every array of the store with its chunk objects and the chunks that must exist."""
    fs, root = filesystem(store.url)
    jobs = []
    for path, array in store_arrays(store):
        parent = store.root[path.rsplit("/", 1)[0]] if "/" in path else store.root
        name = path.rsplit("/", 1)[-1]
        flags = None if name == "chunk_done" else _done_flags(parent)
        prefix = f"{root}/{path}/"
        found = fs.find(f"{prefix}c") if fs.exists(f"{prefix}c") else []
        keys = tuple(sorted(key[len(prefix):] for key in found))
        if path.startswith("models/"):
            flags = tuple(range(-(-array.shape[0] // array.chunks[0])))
        checksummed = has_checksum(array)
        required = flags if flags is not None and checksummed else ()
        jobs.append(ArrayJob(path, keys, tuple(i for i in required
                                               if i * array.chunks[0] < array.shape[0]),
                             checksummed))
    return jobs


def check_array(store_url: str, job: ArrayJob, storage_options: dict | None = None
                ) -> list[ChunkFinding]:
    """The damaged chunks of one array (run on any worker: it opens the store itself, with
    the config's ``storage.options``)."""
    if storage_options:
        configure_filesystems(storage_options)
    fs, root = filesystem(store_url)
    findings = []
    present = {int(key.split("/")[1]) for key in job.keys}
    array: zarr.Array | None = None
    for key in job.keys:
        index = int(key.split("/")[1])
        if job.checksummed:
            if not intact(fs.cat_file(f"{root}/{job.path}/{key}")):
                findings.append(ChunkFinding(job.path, index, "checksum mismatch"))
            continue
        if array is None:
            array = DatasetStore(store_url, create=False).root[job.path]
        size = array.chunks[0]
        try:
            array[index * size : (index + 1) * size]
        except Exception as error:  # any decoding failure is the finding
            findings.append(ChunkFinding(job.path, index, f"unreadable: {error}"))
    findings += [ChunkFinding(job.path, index, "missing") for index in job.required
                 if index not in present]
    return findings


def damaged_manifest_rows(store: DatasetStore) -> list[str]:
    """Manifest row files (``manifest/<id>.parquet``) that do not read as a manifest row."""
    fs, path = store.manifest.fs, store.manifest.path
    damaged = []
    for file in sorted(fs.glob(f"{path}/*.parquet")):
        try:
            with fs.open(file, "rb") as handle:
                pq.read_table(handle, schema=SCHEMA)
        except Exception:  # whatever pyarrow says, the row is unreadable
            damaged.append(file.rsplit("/", 1)[-1])
    return damaged


def verify_store(store: DatasetStore, run_jobs: Callable[[list[ArrayJob]], list]) -> Report:
    """Check every array (``run_jobs`` maps :func:`check_array` over the jobs, in parallel
    where it can) and every manifest row."""
    jobs = plan_jobs(store)
    findings = [f for result in run_jobs(jobs) for f in result]
    return Report(sorted(findings, key=lambda f: (f.array, f.index)),
                  damaged_manifest_rows(store), len(jobs), sum(len(j.keys) for j in jobs),
                  sum(not j.checksummed for j in jobs))


def finding_stage(array_path: str) -> tuple[str | None, str | None]:
    """(video id, stage) that wrote an array: videos/<id>/frames -> (id, 'ingest'),
    videos/<id>/detect/keypoints -> (id, 'detect'), videos/<id>/rounds/... -> (id,
    'reconstruct'), models/s2hand/... -> (None, 'train'), a round's model -> (None,
    'rounds')."""
    parts = array_path.split("/")
    if parts[0] == "models":
        return None, "train" if parts[1] == MODEL else ROUNDS
    if parts[0] != "videos" or len(parts) < 3:
        return None, None
    if len(parts) == 3:
        return parts[1], VIDEO_ARRAYS_STAGE
    if parts[2] == ROUNDS:
        return parts[1], "reconstruct"
    return parts[1], GROUP_STAGE.get(parts[2])


def mark_for_repair(store: DatasetStore, report: Report) -> list[str]:
    """Remove the damaged objects, clear their units' completion flags (and the same chunks
    of the stages that read them) and mark those stages failed; returns what was not
    repairable here (said as lines)."""
    fs, root = filesystem(store.url)
    unrepairable = []
    for name in report.manifest_damaged:  # first: marking the findings reads the rows
        unrepairable += _rebuild_row(store, name.removesuffix(".parquet"))
    failed: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    for finding in report.findings:
        video, stage = finding_stage(finding.array)
        if stage is None:
            unrepairable.append(f"{finding.array}: no stage to redo it; "
                                "run 'handlabel rerun STORE --stage rig'")
            continue
        array = store.root[finding.array]
        key = f"{root}/{finding.array}/{chunk_key(array, finding.index)}"
        if fs.exists(key):
            fs.rm(key)
        failed[(video, stage)].append(f"{finding.array} chunk {finding.index}: "
                                      f"{finding.problem}")
        if video is not None:
            _clear_flags(store, video, stage, finding.index)
        elif stage == ROUNDS:
            _forget_rounds(store, finding.array.split("/")[1])
        else:
            _forget_model(store)
    for (video, stage), problems in failed.items():
        if stage == ROUNDS:  # not a manifest stage: its record says it is to redo
            continue
        videos = [video] if video else list(store.manifest.table()["video_id"])
        for vid in videos:
            store.manifest.upsert(vid, **{f"{stage}_state": StageState.FAILED.value,
                                          f"{stage}_error": "damaged: " + "; ".join(problems)})
    return unrepairable


def _clear_flags(store: DatasetStore, video: str, stage: str, index: int) -> None:
    if stage == VIDEO_ARRAYS_STAGE:
        store.video(video).group["chunk_done"][index] = False
    groups = [g for g, s in GROUP_STAGE.items() if s == stage] + list(READERS[stage])
    for name in dict.fromkeys(groups):
        arrays = store.stage(video, name)
        if arrays is None:
            continue
        if name == "weight":  # written whole per video
            arrays.group["chunk_done"][:] = False
        elif index < arrays.n_chunks:
            arrays.group["chunk_done"][index] = False


def _forget_rounds(store: DatasetStore, model_name: str) -> None:
    """A round's damaged checkpoint: that model forgotten and the rounds record left
    unfinished, so that the rounds stage runs again."""
    _forget_model(store, model_name)
    record = store.root.get(ROUNDS)
    if record is not None:
        record.attrs["complete"] = False


def _forget_model(store: DatasetStore, name: str = MODEL) -> None:
    """A damaged checkpoint: training starts over (it is deterministic: the same network)."""
    model = store.model(name)
    for key in list(model.group.array_keys()):
        del model.group[key]
    model.update_attrs(latest=None, complete=False)


def _rebuild_row(store: DatasetStore, video_id: str) -> list[str]:
    """A new manifest row for a video whose row does not read, from its stored attributes:
    every stage reads as not done and ingest as failed, so the rerun reads the source again
    (only its missing chunks) and redoes the rest."""
    video = store.video(video_id)
    fs, path = store.manifest.fs, store.manifest.path
    fs.rm(f"{path}/{video_id}.parquet")
    if video is None or not video.attrs.get("source_uri"):
        return [f"manifest/{video_id}.parquet: removed; no stored video records its source, "
                "so ingest it again by its path"]
    attrs = video.attrs
    store.manifest.upsert(video_id, source_uri=attrs["source_uri"],
                          content_hash=attrs.get("content_hash"),
                          size_bytes=attrs.get("size_bytes"), fps=attrs.get("fps"),
                          intrinsics_estimated=attrs.get("intrinsics_estimated"),
                          ingest_state=StageState.FAILED.value,
                          ingest_error="manifest row rebuilt after damage",
                          **{f"{s}_state": StageState.PENDING.value for s in STAGES[1:]})
    return []
