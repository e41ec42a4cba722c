"""Session-wide Prefect test server and Dask cluster; sample data paths; generated clips."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# One torch thread per process (before torch is imported): the suite runs an xdist worker per
# core and one more, Dask workers and servers beside them, so a second intra-op thread only
# competes for a busy core (the tests' pipeline: 27 s of CPU with one thread, 31-35 s with
# two, the same wall time alone). Training still takes every core (tasks/train.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker's CLI runs start temporary Prefect APIs of their own: one database
    # per worker, so that two workers' servers never share one SQLite file.
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(
        prefix=f"handlabel-prefect-{os.environ['PYTEST_XDIST_WORKER']}-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

import pytest

from handlabel.config import HandlabelConfig, IngestConfig

from .media import numbered_frames, set_mp4_rotation, truncated_copy, write_clip

ROOT = Path(__file__).resolve().parents[1]
# the database of the temporary APIs that this process's CLI runs start
HOME_DATABASE = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser() / "prefect.db"
DATA = ROOT.parent / "shared" / "data"
OFFICE_MP4 = DATA / "videos" / "right_hand_office.mp4"
GESTURE_AVI = DATA / "videos" / "gesture_mjpg_320x240.avi"
STEREO_CAM0 = DATA / "stereo" / "cam0.mp4"
VFR_PTS_MS = [0, 33, 66, 200, 233, 600, 633, 1000, 1033, 1066]


# Tiers (docs in README.md, "Tests"): `server` tests start or use a Prefect API, a Dask
# cluster or a CLI run with its own; `faults` kill, fill and break things on purpose.
SERVER_FIXTURES = {"prefect_api", "dask_cluster", "slurm_cluster"}
SERVER_MODULES = {"test_schedules", "test_run_lock", "test_faults", "test_prefect_api"}
FAULT_MODULES = {"test_faults"}


# The longest modules first (pytest --durations), so that with ``--dist loadfile``
# (make test) no long module starts last while the other workers sit idle. (A module runs
# on one worker: the pipeline's tests are split over several modules to spread them.)
# Under xdist (``make test``) this order holds only with ``--no-loadscope-reorder``: by
# default xdist hands out modules by their number of tests, most first. One fresh clone
# with the order kept took 16 min 58 s against 15 min 04 s without (the long modules ran
# together and slowed each other), so make test leaves xdist's order (performance.md).
LONGEST_MODULES = ("test_faults", "test_fit", "test_pipeline", "test_pipeline_failures",
                   "test_pipeline_reruns", "test_object_store",
                   "test_train_stage", "test_integrity", "test_clip_training",
                   "test_detect_flow", "test_selfcheck", "test_rounds", "test_ingest_flow",
                   "test_pretrain", "test_stages", "test_cli")


def _module(item) -> str:
    return item.module.__name__.rpartition(".")[2]


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: LONGEST_MODULES.index(_module(item))
               if _module(item) in LONGEST_MODULES else len(LONGEST_MODULES))
    skip = pytest.mark.skip(reason=f"sample data not found at {DATA}")
    for item in items:
        module = _module(item)
        if SERVER_FIXTURES & set(item.fixturenames) or module in SERVER_MODULES:
            item.add_marker(pytest.mark.server)
        if module in FAULT_MODULES:
            item.add_marker(pytest.mark.faults)
        if not OFFICE_MP4.exists() and "sample" in item.fixturenames:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample() -> Path:
    return DATA


def _shared_folder(tmp_path_factory) -> Path:
    """The session's folder all xdist workers see (each worker's own is below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory) -> Path:
    """An empty Prefect database, migrated once per session (the first xdist worker to ask
    makes it, the others wait): every server the tests start begins from a copy. Migrating a
    fresh SQLite file took 13 of a temporary API's 19 s start here (5 s from a copy)."""
    from filelock import FileLock

    shared = _shared_folder(tmp_path_factory)
    template = shared / "prefect-migrated.db"
    with FileLock(str(shared / "prefect-migrated.lock")):
        if not template.exists():
            building = shared / "prefect-migrating.db"
            building.unlink(missing_ok=True)
            _start_and_stop_api(building)
            copy_database(building, template)
    return template


def copy_database(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite database (its write-ahead log included)."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


def _launch_api(database: Path):
    """The project's temporary Prefect server (``flows/prefect_api.TemporaryAPI``) on
    ``database``, launched (not yet answering)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    from handlabel.flows.prefect_api import TemporaryAPI

    with temporary_settings(updates={PREFECT_SERVER_DATABASE_CONNECTION_URL:
                                     f"sqlite+aiosqlite:///{database}"}):
        return TemporaryAPI.launch()


def _start_and_stop_api(database: Path) -> None:
    server = _launch_api(database)
    try:
        server.wait_until_healthy()
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _migrated_home_database(request):
    """Under xdist each worker has a PREFECT_HOME of its own (above); the temporary APIs its
    CLI runs start use the database there, copied from the session's migrated one before
    the first test that may start one (the fast tier starts none and does not wait)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or HOME_DATABASE.exists():
        return
    if any(request.node.get_closest_marker(m) for m in ("server", "faults", "slow")):
        copy_database(request.getfixturevalue("prefect_database"), HOME_DATABASE)


@pytest.fixture(scope="session")
def prefect_api(prefect_database, tmp_path_factory):
    """The session's Prefect API: the project's own temporary server (the one the CLI
    starts) on a copy of the migrated database; its flow runs send no heartbeats either."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from handlabel.flows.prefect_api import WITHOUT_HEARTBEATS, drain_prefect_workers

    server = _launch_api(copy_database(prefect_database,
                                       tmp_path_factory.mktemp("prefect-api") / "prefect.db"))
    try:
        server.wait_until_healthy()
        with temporary_settings(updates={PREFECT_API_URL: server.url, **WITHOUT_HEARTBEATS}):
            os.environ["PREFECT_API_URL"] = server.url  # Dask worker processes inherit it
            refresh_global_settings_context()  # threads without Prefect's context read it
            try:
                yield server.url
            finally:
                drain_prefect_workers()
                os.environ.pop("PREFECT_API_URL", None)
                refresh_global_settings_context()
    finally:
        server.stop()


class SessionCluster:
    """The session's LocalCluster (2 worker processes), started again when its scheduler's
    event loop has stopped: seen once in CI, the in-process scheduler's loop thread gone
    while its socket still took connections, and the next pipeline waited on it for good
    (cause not found; ``flows/runner.share_environment`` now fails such a wait in 90 s).
    Tests read ``scheduler_address``, which checks first."""

    def __init__(self):
        self._cluster = None

    @property
    def scheduler_address(self) -> str:
        return self.running().scheduler_address

    def running(self):
        """The cluster, started (again) where it is not running."""
        from distributed import LocalCluster

        if self._cluster is not None and not self._cluster.loop.asyncio_loop.is_running():
            warnings.warn("the session's Dask cluster had stopped: starting a new one",
                          stacklevel=2)
            self._cluster = None  # its loop is gone: nothing of it can be closed cleanly
        if self._cluster is None:
            self._cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
        return self._cluster

    def close(self) -> None:
        if self._cluster is not None and self._cluster.loop.asyncio_loop.is_running():
            self._cluster.close()


@pytest.fixture(scope="session")
def dask_cluster(prefect_api):
    cluster = SessionCluster()
    cluster.running()  # started now, as before, not inside the first test that asks
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def gesture_store(request, prefect_api, tmp_path_factory, sample) -> Path:
    """The gesture clip through every stage with the tests' small config
    (``tests/pipeline_runs.CONFIG``) on Dask workers, built once per session: the first xdist
    worker to ask builds it, the others wait for it. Never changed: a test that writes to it
    copies it first (``shutil.copytree``)."""
    from filelock import FileLock

    from handlabel.flows.pipeline import run_pipeline

    from .pipeline_runs import CONFIG

    shared = _shared_folder(tmp_path_factory)
    store, building = shared / "gesture-store", shared / "gesture-store.building"
    with FileLock(str(shared / "gesture-store.lock")):
        if not store.exists():
            shutil.rmtree(building, ignore_errors=True)  # a build that failed half-way
            cluster = request.getfixturevalue("dask_cluster")
            state = run_pipeline([str(GESTURE_AVI)], str(building), CONFIG,
                                 dask_address=cluster.scheduler_address)
            assert state.is_completed(), state.message
            building.rename(store)
    return store


@pytest.fixture
def ingest(dask_cluster):
    """Run the ingest flow on the session's cluster; returns (state, results)."""
    from handlabel.flows.ingest import run_ingest

    def run(sources, store, overwrite=False, **ingest_fields):
        config = HandlabelConfig(ingest=IngestConfig(**ingest_fields))
        state = run_ingest([str(s) for s in sources], str(store), config, overwrite,
                           dask_address=dask_cluster.scheduler_address)
        results = state.result(raise_on_failure=False)
        return state, {r.name: r for r in results} if isinstance(results, list) else {}

    return run


@pytest.fixture(scope="session")
def clips(tmp_path_factory, sample) -> dict[str, Path]:
    """Generated inputs with known answers, made once per session."""
    folder = tmp_path_factory.mktemp("clips")
    pattern = numbered_frames(6, width=64, height=32)
    for frame in pattern:
        frame[:, :32] = 255  # left half white: shows where a rotation puts it
    upright = write_clip(folder / "pattern.mp4", pattern)
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n")
    return {
        "vfr": write_clip(folder / "vfr.mp4", numbered_frames(len(VFR_PTS_MS)), VFR_PTS_MS),
        "pattern": upright,
        "rotated90": set_mp4_rotation(upright, folder / "rotated90.mp4", 90),
        "truncated_mp4": truncated_copy(OFFICE_MP4, folder / "truncated.mp4", 0.5),
        "truncated_avi": truncated_copy(GESTURE_AVI, folder / "truncated.avi", 0.5),
        "text": text,
        "empty_file": _touch(folder / "empty.mp4"),
    }


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.fixture
def copy_to(tmp_path):
    def copy(src: Path, name: str) -> Path:
        dst = tmp_path / "inputs" / name
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    return copy


@pytest.fixture(scope="session")
def mirrored_clip(tmp_path_factory, sample) -> Path:
    """A second real clip with other content: the gesture clip mirrored (a left hand)."""
    import av

    with av.open(str(GESTURE_AVI)) as container:
        frames = [f.to_ndarray(format="rgb24")[:, ::-1].copy() for f in container.decode(video=0)]
    return write_clip(tmp_path_factory.mktemp("mirrored") / "mirrored.mp4", frames[:12])


@pytest.fixture(scope="module")
def complete_store(gesture_store, tmp_path_factory):
    """The module's own copy of the session's gesture store (its tests change it)."""
    from handlabel.storage.store import DatasetStore

    store = tmp_path_factory.mktemp("complete") / "store"
    shutil.copytree(gesture_store, store)
    return DatasetStore(str(store))


BUCKET = "handlabel-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port; stopped by its pid."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # MOTO_LOG=FILE keeps the server's request log (one line a request), to count them
    with open(os.environ.get("MOTO_LOG", os.devnull), "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                   "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def s3_options(s3_endpoint, monkeypatch):
    """The endpoint's fsspec options; the test's changes to fsspec's config are undone."""
    import fsspec.config
    import s3fs

    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    monkeypatch.setenv("FSSPEC_S3", "{}")
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return options
