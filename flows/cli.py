"""The ``handlabel`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from handlabel.config import ConfigError, HandlabelConfig, load_config
from handlabel.storage.sources import SourceNotFoundError, resolve_sources
from handlabel.storage.store import DatasetStore, StoreError

from .reference import config_reference
from .runner import quiet_dask_logs
from .status import failures, status_table

app = typer.Typer(help="Turn hand video archives into annotated 3D hand datasets.",
                  no_args_is_help=True, add_completion=False)
console = Console()

SAMPLE_VIDEO = Path("../shared/data/videos/right_hand_office.mp4")
DEMO_STORE = Path("demo-store")

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]


def _config(path: Path | None) -> HandlabelConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc


def print_status(store: str, long: bool = False) -> bool:
    """Print the status table; returns True when no stage of any video failed."""
    try:
        table = DatasetStore(store, create=False).manifest.table()
    except StoreError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(status_table(table, title=f"{store}: {len(table)} videos", long=long))
    lines = failures(table)
    for line in lines:
        console.print(f"[red]failed[/] {line}", soft_wrap=True, highlight=False)
    return not lines


def _check_sources(sources: list[str], config: HandlabelConfig) -> None:
    """Fail fast on a missing source, before a Prefect server or a cluster is started."""
    try:
        resolve_sources(sources, config.ingest.extensions)
    except SourceNotFoundError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc


def _report(state) -> bool:
    if state.is_failed():
        console.print(f"[red]{state.message}[/]", soft_wrap=True)
    return not state.is_failed()


def _ingest(sources: list[str], store: str, config: HandlabelConfig, overwrite: bool,
            dask_address: str | None) -> bool:
    from .ingest import run_ingest  # imports Prefect; kept off the path of `status`

    _check_sources(sources, config)
    quiet_dask_logs()
    return _report(run_ingest(sources, store, config, overwrite, dask_address))


def _pipeline(sources: list[str], store: str, config: HandlabelConfig, overwrite: bool,
              dask_address: str | None) -> bool:
    from .pipeline import run_pipeline

    _check_sources(sources, config)
    quiet_dask_logs()
    return _report(run_pipeline(sources, store, config, overwrite, dask_address))


def _stage(name: str, store: str, config: HandlabelConfig, overwrite: bool,
           dask_address: str | None) -> bool:
    from .detect import detect_flow
    from .pipeline import run_stage
    from .weight import weight_flow

    try:
        DatasetStore(store, create=False)
    except StoreError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    quiet_dask_logs()
    flow = {"detect": detect_flow, "weight": weight_flow}[name]
    return _report(run_stage(flow, store, config, overwrite, dask_address))


@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Videos: files, folders, globs, URLs.")],
    store: Annotated[str, typer.Option("--store", "-s", help="Store folder or fsspec URL.")],
    config: ConfigOption = None,
    overwrite: Annotated[bool, typer.Option(help="Re-ingest videos already stored.")] = False,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler.")] = None,
) -> None:
    """Decode videos into the store's Zarr frame chunks (stage 1)."""
    ok = _ingest(sources, store, _config(config), overwrite, dask_address)
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
    """The whole pipeline over SOURCES: ingest, detect, weight (more stages to come)."""
    ok = _pipeline(sources, store, _config(config), overwrite, dask_address)
    ok = print_status(store) and ok
    raise typer.Exit(0 if ok else 1)


@app.command()
def detect(store: StoreArgument, config: ConfigOption = None, overwrite: OverwriteOption = False,
           dask_address: DaskOption = None) -> None:
    """Stage 2 alone: hands, keypoints, confidences and crops for every ingested video."""
    ok = _stage("detect", store, _config(config), overwrite, dask_address)
    raise typer.Exit(0 if print_status(store) and ok else 1)


@app.command()
def weight(store: StoreArgument, config: ConfigOption = None, overwrite: OverwriteOption = False,
           dask_address: DaskOption = None) -> None:
    """Stage 3 alone: supervision weights for every detected video."""
    ok = _stage("weight", store, _config(config), overwrite, dask_address)
    raise typer.Exit(0 if print_status(store) and ok else 1)


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
    """The main job end to end on embedded defaults (for now: ingest, detect, weight)."""
    if not video.exists():
        console.print(f"[red]{video}: sample video not found; run from the project root "
                      "next to ../shared/data, or pass --video[/]")
        raise typer.Exit(2)
    ok = _pipeline([str(video)], str(store), _config(config), False, None)
    ok = print_status(str(store)) and ok
    console.print(f"Dataset store: {store.resolve()}")
    raise typer.Exit(0 if ok else 1)


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
        with console.status("detecting") as status:
            per_sample, per_joint = evaluate_keypoints(
                samples, detector, lambda k, n: status.update(f"detecting {k}/{n}"))
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
