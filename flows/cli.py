"""The ``handlabel`` command line."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from handlabel.config import ConfigError, HandlabelConfig, load_config
from handlabel.storage.run_lock import StoreBusyError, StoreNotWritableError, store_run
from handlabel.storage.sources import SourceNotFoundError, resolve_sources
from handlabel.storage.store import DatasetStore, StoreError

from .reference import config_reference
from .rerun import first_pending, pending_work, plan_rerun
from .stages import NAMES, STAGES
from .status import failures, rounds_line, status_table

app = typer.Typer(help="Turn hand video archives into annotated 3D hand datasets.",
                  no_args_is_help=True, add_completion=False)
console = Console()

SAMPLE_VIDEO = Path("../shared/data/videos/right_hand_office.mp4")
DEMO_STORE = Path("demo-store")

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]


def _config(path: Path | None) -> HandlabelConfig:
    """The configuration, with its fsspec options in effect for this process."""
    from handlabel.storage.fs import configure_filesystems

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise _fail(exc) from exc
    configure_filesystems(config.storage.options)
    return config


def _fail(message: object, code: int = 2) -> typer.Exit:
    console.print(f"[red]{escape(str(message))}[/]", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _open_store(store: str) -> DatasetStore:
    try:
        return DatasetStore(store, create=False)
    except StoreError as exc:
        raise _fail(exc) from exc


@contextlib.contextmanager
def _holding(store: str, command: str) -> Iterator[None]:
    """The store locked for this command before any server starts: one line and exit 2
    when it cannot be written or another live run is writing it."""
    try:
        with store_run(store, f"handlabel {command}"):
            yield
    except (StoreBusyError, StoreNotWritableError) as exc:
        raise _fail(exc) from exc


def print_status(store: str, long: bool = False) -> bool:
    """Print the status table; returns True when no stage of any video failed or was
    interrupted."""
    opened = _open_store(store)
    table = opened.manifest.table()
    console.print(status_table(table, title=f"{store}: {len(table)} videos", long=long))
    if unchecked := opened.videos_without_checksums():
        console.print(f"{len(unchecked)} videos were stored before chunk checksums: their "
                      "chunks are read unchecked ('handlabel verify' decodes them)",
                      highlight=False)
    if line := rounds_line(opened.root):
        console.print(line, highlight=False, soft_wrap=True)
    lines = failures(table)
    for line in lines:
        console.print(f"[red]{escape(line)}[/]", soft_wrap=True, highlight=False)
    return not lines


def _check_sources(sources: list[str], config: HandlabelConfig) -> None:
    """Fail fast on a missing source, or sources with no video, before a Prefect server or
    a cluster is started."""
    try:
        found = resolve_sources(sources, config.ingest.extensions)
    except SourceNotFoundError as exc:
        raise _fail(exc) from exc
    if not found:
        raise _fail(f"{', '.join(sources)}: no video files here (extensions "
                    f"{', '.join(config.ingest.extensions)}; see ingest.extensions)")


def _found(sources: list[str], config: HandlabelConfig) -> tuple[list[str], list[str]]:
    """The recorded sources that still exist, and those that do not."""
    found, missing = [], []
    for source in sources:
        try:
            found += resolve_sources([source], config.ingest.extensions)
        except SourceNotFoundError:
            missing.append(source)
    return found, missing


def _report(run: Callable[[], object], store: str, config: HandlabelConfig) -> bool:
    """Run a flow with the store's live progress shown; print why it failed; a Prefect API
    that cannot start is one line, exit 2."""
    from .prefect_api import PrefectAPIError  # imports Prefect; kept off the path of `status`
    from .progress import progress_display
    from .runner import quiet_dask_logs

    quiet_dask_logs()
    try:
        with _run_log(store), progress_display(store, config, console):
            state = run()
    except PrefectAPIError as exc:
        raise _fail(exc) from exc
    if state.is_failed():
        console.print(f"[red]{escape(str(state.message))}[/]", soft_wrap=True)
    return not state.is_failed()


def _ingest(sources: list[str], store: str, config: HandlabelConfig, overwrite: bool,
            dask_address: str | None) -> bool:
    from .ingest import run_ingest

    return _report(lambda: run_ingest(sources, store, config, overwrite, dask_address), store,
                   config)


def _pipeline(sources: list[str], store: str, config: HandlabelConfig, overwrite: bool,
              dask_address: str | None, **options) -> bool:
    from .pipeline import run_pipeline

    return _report(lambda: run_pipeline(sources, store, config, overwrite, dask_address,
                                        **options), store, config)


def _stage(name: str, store: str, config: HandlabelConfig, overwrite: bool,
           dask_address: str | None) -> bool:
    from .pipeline import run_stage

    _open_store(store)
    with _holding(store, name):
        return _report(lambda: run_stage(name, store, config, overwrite, dask_address), store,
                       config)


@contextlib.contextmanager
def _run_log(store: str) -> Iterator[None]:
    """Prefect's log of the run, INFO and up, in ``STORE/logs/`` (local stores); the
    console shows warnings and errors only, unless ``--verbose``."""
    import logging
    from datetime import UTC, datetime

    from handlabel.storage.fs import is_local, normalise_url

    if not is_local(store):
        yield
        return
    folder = Path(normalise_url(store)) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("prefect")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        console.print(f"log: {path}", highlight=False, soft_wrap=True)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's own "
                                               "log lines on the console too.")] = False
         ) -> None:
    """Turn hand video archives into annotated 3D hand datasets."""
    if not verbose:  # read by Prefect when it is first imported, here and in spawned workers
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Videos: files, folders, globs, URLs.")],
    store: Annotated[str, typer.Option("--store", "-s", help="Store folder or fsspec URL.")],
    config: ConfigOption = None,
    overwrite: Annotated[bool, typer.Option(help="Re-ingest videos already stored.")] = False,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler.")] = None,
) -> None:
    """Decode videos into the store's Zarr frame chunks (stage 1)."""
    settings = _config(config)
    _check_sources(sources, settings)
    with _holding(store, "ingest"):
        ok = _ingest(sources, store, settings, overwrite, dask_address)
    print_status(store)
    raise typer.Exit(0 if ok else 1)


StoreOption = Annotated[str, typer.Option("--store", "-s", help="Store folder or fsspec URL.")]
StoreArgument = Annotated[str, typer.Argument(help="Store folder or fsspec URL.")]
OverwriteOption = Annotated[bool, typer.Option(help="Redo work already done.")]
DaskOption = Annotated[str | None, typer.Option(help="Existing Dask scheduler.")]


@app.command()
def run(
    sources: Annotated[list[str], typer.Argument(help="Videos: files, folders, globs, URLs.")],
    store: StoreOption,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    dask_address: DaskOption = None,
) -> None:
    """The whole pipeline over SOURCES: ingest, detect, weight, train, reconstruct, rounds of
    fit and training (when train.rounds asks), rig (calibrated rigs) and export. Work
    already done with the same inputs and configuration is skipped."""
    settings = _config(config)
    _check_sources(sources, settings)
    with _holding(store, "run"):
        ok = _pipeline(sources, store, settings, overwrite, dask_address)
    ok = print_status(store) and ok
    print_outputs(store)
    raise typer.Exit(0 if ok else 1)


@app.command()
def label(
    store: Annotated[str, typer.Argument(help="A store with a trained model.")],
    sources: Annotated[list[str], typer.Argument(help="New videos: files, folders, globs, "
                                                      "URLs.")],
    config: ConfigOption = None,
    dask_address: DaskOption = None,
) -> None:
    """Label new videos with STORE's trained network as it is (no retraining): ingest,
    detect, weight, reconstruct and export SOURCES, and write the dataset files over every
    video. Train on a sample of an archive with `run`, label the rest with `label`. A later
    `run` or `rerun` trains again on every video the store holds. The new videos are
    labelled by the train stage's network (round 0): rounds of fit and training
    (train.rounds) retrain, so `label` skips them."""
    settings = _config(config)
    dataset = _open_store(store)
    attrs = dataset.model().attrs if dataset.has_model() else {}
    if not attrs.get("complete"):
        raise _fail(f"{store}: no trained model to label with; run `handlabel run` on a "
                    "sample of the videos first")
    _check_sources(sources, settings)
    with _holding(store, "label"):
        ok = _pipeline(sources, store, settings, False, dask_address, skip=("train", "rounds"))
    ok = print_status(store) and ok
    print_outputs(store)
    raise typer.Exit(0 if ok else 1)


@app.command()
def rerun(
    store: StoreArgument,
    stage: Annotated[str | None, typer.Option(help="Redo this stage (and what depends on it); "
                                              "default: finish whatever is missing or "
                                              "failed.")] = None,
    failed_only: Annotated[bool, typer.Option(help="Only the videos with a failed or "
                                              "interrupted stage, and within them only the "
                                              "units not done; the rest is kept.")] = False,
    config: ConfigOption = None,
    dask_address: DaskOption = None,
) -> None:
    """Rerun the pipeline on a store's own videos (their recorded sources, read again only
    where a video's ingest is not done)."""
    if stage is not None and stage not in NAMES:
        raise _fail(f"--stage must be one of {', '.join(NAMES)}")
    plan = plan_rerun(_open_store(store).manifest.table(), stage, failed_only)
    console.print(f"rerun: {plan.summary}", highlight=False)
    if plan.first_stage is None:
        raise typer.Exit(0 if print_status(store) else 1)
    settings = _config(config)
    sources, missing = _found(plan.sources, settings)
    for source in missing:
        console.print(f"[red]{source}: source not found (moved or deleted?); its video "
                      "keeps its state[/]", soft_wrap=True, highlight=False)
    first = plan.first_stage
    if first == "ingest" and not sources:
        first = "detect"  # nothing to read again: go on with what is stored
    if first != "ingest" and plan.overwrite_stage is None and plan.videos is None:
        first = _first_pending(store, settings, first)
        if first is None:
            ok = print_status(store)
            print_outputs(store)
            raise typer.Exit(0 if ok and not missing else 1)
    with _holding(store, "rerun"):
        ok = _pipeline(sources, store, settings, False, dask_address, first_stage=first,
                       overwrite_stage=plan.overwrite_stage, videos=plan.videos)
    ok = print_status(store) and ok and not missing
    print_outputs(store)
    raise typer.Exit(0 if ok else 1)


def _first_pending(store: str, config: HandlabelConfig, first: str) -> str | None:
    """The first stage from ``first`` on with units not current, asked of the store before
    any server or cluster starts; None (and said so) when every stage is current."""
    pending = pending_work(_open_store(store), config)
    start = first_pending(pending, first)
    if start is None:
        console.print("rerun: nothing to do, every stage is current with this config",
                      highlight=False)
        return None
    console.print("rerun: to do: " + "; ".join(
        f"{stage} {_units(units)}" for stage, units in pending.items()
        if NAMES.index(stage) >= NAMES.index(start)), highlight=False, soft_wrap=True)
    return start


def _units(units: list[str]) -> str:
    return ", ".join(units) if len(units) <= 3 else f"{len(units)} units"


def export(
    store: StoreArgument,
    format: Annotated[list[str] | None, typer.Option(
        "--format", "-f", help="parquet, coco, freihand, overlay, report, rerun (repeat the "
        "option); "
        "default: the config's export.formats.")] = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    dask_address: DaskOption = None,
) -> None:
    from pydantic import ValidationError

    from handlabel.config import ExportConfig

    settings = _config(config)
    if format:
        try:
            chosen = ExportConfig(**{**settings.export.model_dump(), "formats": format})
        except ValidationError as exc:
            console.print(f"[red]--format: {exc.errors()[0]['msg']}[/]", soft_wrap=True)
            raise typer.Exit(2) from exc
        settings = settings.model_copy(update={"export": chosen})
    ok = _stage("export", store, settings, overwrite, dask_address)
    print_outputs(store)
    raise typer.Exit(0 if print_status(store) and ok else 1)


def _stage_help(name: str) -> str:
    number = NAMES.index(name) + 1
    return f"Stage {number} alone. {STAGES[number - 1].summary}"


def _stage_command(name: str) -> Callable[..., None]:
    """The command that runs stage ``name`` alone (every stage but ingest and export, whose
    commands take more options)."""

    def command(store: StoreArgument, config: ConfigOption = None,
                overwrite: OverwriteOption = False, dask_address: DaskOption = None) -> None:
        ok = _stage(name, store, _config(config), overwrite, dask_address)
        raise typer.Exit(0 if print_status(store) and ok else 1)

    return command


for _stage_entry in STAGES:
    if _stage_entry.name not in ("ingest", "export"):
        app.command(_stage_entry.name, help=_stage_help(_stage_entry.name))(
            _stage_command(_stage_entry.name))
export = app.command(help=_stage_help("export"))(export)


def print_outputs(store: str) -> None:
    """Where the dataset, overlays and report are (those that exist)."""
    for label, path in DatasetStore(store, create=False).exported_files():
        console.print(f"{label}: {path}", soft_wrap=True, highlight=False)


@app.command()
def verify(
    store: StoreArgument,
    repair: Annotated[bool, typer.Option(help="Redo the damaged units from their sources "
                                         "(and what depends on them), like rerun "
                                         "--failed-only.")] = False,
    config: ConfigOption = None,
    dask_address: DaskOption = None,
) -> None:
    """Read every stored chunk and manifest row; name the damaged ones per video and array.
    Exit 1 when any is damaged (0 once --repair has redone them)."""
    from rich.progress import Progress

    from handlabel.storage.verify import mark_for_repair, verify_store

    from .runner import configured_address
    from .verify import parallel_checks

    settings = _config(config)
    opened = _open_store(store)
    address = configured_address(settings.dask, dask_address)
    with Progress(console=console, transient=True) as progress:
        report = verify_store(opened, parallel_checks(opened.url, address, progress,
                                                      settings.storage.options))
    _print_report(report)
    if not (report.findings or report.manifest_damaged):
        raise typer.Exit(0)
    if not repair:
        console.print(f"run 'handlabel verify {store} --repair' to redo them", highlight=False)
        raise typer.Exit(1)
    with _holding(store, "verify --repair"):
        unrepairable = mark_for_repair(opened, report)
    for line in unrepairable:
        console.print(f"[red]{escape(line)}[/]", soft_wrap=True, highlight=False)
    rerun(store, stage=None, failed_only=True, config=config, dask_address=dask_address)


def _print_report(report) -> None:
    console.print(f"verify: {report.objects} chunk objects of {report.arrays} arrays read"
                  + (f" ({report.unchecked_arrays} arrays written before checksums: decoded, "
                     "not checksum-checked)" if report.unchecked_arrays else ""),
                  highlight=False)
    for finding in report.findings:
        console.print(f"[red]damaged: {escape(finding.array)} chunk {finding.index}: "
                      f"{escape(finding.problem)}[/]", soft_wrap=True, highlight=False)
    for name in report.manifest_damaged:
        console.print(f"[red]damaged: manifest/{escape(name)}: not a readable manifest row[/]",
                      soft_wrap=True, highlight=False)
    if not (report.findings or report.manifest_damaged):
        console.print("verify: no damaged chunk", highlight=False)


@app.command()
def status(
    store: Annotated[str, typer.Argument(help="Store folder or fsspec URL.")],
    long: Annotated[bool, typer.Option("--long", "-l", help="Add id, size, fps, timings.")] = False,
) -> None:
    """Show each video's state in each stage; exit code 1 if any stage of any video failed."""
    raise typer.Exit(0 if print_status(store, long) else 1)


@app.command()
def demo(
    video: Annotated[Path, typer.Option(help="Video to run on.")] = SAMPLE_VIDEO,
    store: Annotated[Path, typer.Option(help="Where the dataset goes.")] = DEMO_STORE,
    config: ConfigOption = None,
) -> None:
    """The main job end to end on embedded defaults: the whole pipeline on the sample video,
    then where the dataset, the overlay video and the report are."""
    if not video.exists():
        console.print(f"[red]{video}: sample video not found; run from the project root "
                      "next to ../shared/data, or pass --video[/]")
        raise typer.Exit(2)
    settings = _config(config)
    with _holding(str(store), "demo"):
        ok = _pipeline([str(video)], str(store), settings, False, None)
    ok = print_status(str(store)) and ok
    console.print(f"Dataset store: {store.resolve()}")
    print_outputs(str(store))
    raise typer.Exit(0 if ok else 1)


@app.command()
def view(
    store: StoreArgument,
    video: Annotated[str | None, typer.Argument(help="Part of a video's name (default: the "
                                                "first recording).")] = None,
    web: Annotated[bool, typer.Option(help="Serve Rerun's web viewer instead of opening "
                                      "the native one.")] = False,
) -> None:
    """Open a video's Rerun recording (written by export -f rerun) in the Rerun viewer."""
    import subprocess
    import sys

    recordings = [path for label, path in _open_store(store).exported_files()
                  if label == "Rerun recording" and (video is None or video in path)]
    if not recordings:
        raise _fail(f"{store}: no Rerun recording{f' matching {video!r}' if video else ''}; "
                    "write them with: handlabel export STORE -f rerun")
    command = [sys.executable, "-m", "rerun", *(["--web-viewer"] if web else []),
               recordings[0]]
    console.print(f"opening {recordings[0]}", highlight=False, soft_wrap=True)
    raise typer.Exit(subprocess.call(command))


@app.command("eval-keypoints")
def eval_keypoints(
    manifest: Annotated[Path, typer.Argument(help="Labelled manifest.json (uniform form).")],
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    config: ConfigOption = None,
) -> None:
    """Detector accuracy on labelled images: detection rate, PCK@0.2, AUC, EPE, confidence."""
    from handlabel.storage.labelled import LabelledDataError, read_labelled_manifest
    from handlabel.tasks.detect import detector_from_config
    from handlabel.tasks.evaluate_keypoints import evaluate_keypoints, summarise

    settings = _config(config)
    try:
        samples = read_labelled_manifest(manifest)
        detector = detector_from_config(settings.detect)
        try:
            with console.status("detecting") as status:
                per_sample, per_joint = evaluate_keypoints(
                    samples, detector, lambda k, n: status.update(f"detecting {k}/{n}"))
        finally:
            detector.close()
    except (LabelledDataError, FileNotFoundError) as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    summary = summarise(per_sample, per_joint)
    console.print(f"{manifest}: {len(samples)} samples, detector {settings.detect.backend}")
    console.print(summary.to_markdown(index=False, floatfmt=".3f"), soft_wrap=True)
    if out:
        report = {"manifest": str(manifest), "detector": settings.detect.model_dump(),
                  "summary": summary.to_dict(orient="records"),
                  "samples": per_sample.to_dict(orient="records")}
        out.write_text(json.dumps(report, indent=2, default=float))
        console.print(f"results: {out}")


@app.command("eval")
def eval_model(
    manifest: Annotated[Path, typer.Argument(help="Labelled manifest.json (uniform form).")],
    store: Annotated[str | None, typer.Option("--store", "-s", help="Store whose trained "
                                              "model to evaluate.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="A checkpoint file instead.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    refine_steps: Annotated[int, typer.Option(help="Test-time refinement steps against the "
                                              "detections (0: the network alone).")] = 0,
    fit: Annotated[bool, typer.Option(help="Also score the labels reconstruct writes: the "
                                      "network + the sequence fit (reconstruct.fit), one "
                                      "frame per image.")] = True,
    config: ConfigOption = None,
) -> None:
    """A trained model's 2D (and 3D, where labelled) accuracy on labelled images, next to the
    detector's own accuracy on the same detected hands: teacher (the detector's 2D, and its 3D
    placed by PnP), student (the network alone) and fit (the labels)."""
    from handlabel.storage.labelled import LabelledDataError, read_labelled_manifest
    from handlabel.tasks.detect import detector_from_config
    from handlabel.tasks.evaluate_model import evaluate_model, summarise_model
    from handlabel.tasks.trained_model import NoTrainedModel, load_trained_model

    settings = _config(config)
    try:
        dataset = DatasetStore(store, create=False) if store else None
        net, input_size = load_trained_model(dataset, checkpoint)
        samples = read_labelled_manifest(manifest)
        detector = detector_from_config(settings.detect)
        try:
            with console.status("evaluating") as status:
                rows = evaluate_model(samples, detector, net, input_size,
                                      lambda k, n: status.update(f"detecting {k}/{n}"),
                                      refine_steps=refine_steps,
                                      reconstruct=settings.reconstruct if fit else None,
                                      detect=settings.detect, camera=settings.ingest.camera)
        finally:
            detector.close()
    except (LabelledDataError, FileNotFoundError, NoTrainedModel, StoreError) as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    summary = summarise_model(rows)
    console.print(f"{manifest}: {len(samples)} samples; model from {checkpoint or store}")
    console.print(summary.to_markdown(index=False, floatfmt=".3f"), soft_wrap=True)
    if out:
        out.write_text(json.dumps({"manifest": str(manifest), "model": str(checkpoint or store),
                                   "summary": summary.to_dict(orient="records")},
                                  indent=2, default=float))
        console.print(f"results: {out}")


@app.command("config")
def show_config(
    reference: Annotated[bool, typer.Option(help="Print the Markdown reference.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the effective configuration as YAML, or the reference of every field."""
    import yaml

    if reference:
        print(config_reference(), end="")
    else:
        print(yaml.safe_dump(_config(config).model_dump(mode="json"), sort_keys=False), end="")
