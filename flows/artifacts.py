"""What a Prefect run page shows when a stage or the main flow ends: the status table, the
dataset files and the report's location, and a link to the store when it is a URL."""

from __future__ import annotations

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from handlabel.storage.fs import is_local
from handlabel.storage.store import DatasetStore

from .stages import MANIFEST_STAGES as STAGES


def publish_results(store_url: str) -> None:
    """The ``status``, ``dataset`` and (for URLs) ``store`` artifacts of this flow run."""
    store = DatasetStore(store_url, create=False)
    table = store.manifest.table()
    rows = [{"video": row["name"], "id": row["video_id"],
             **{stage: row[f"{stage}_state"] for stage in STAGES},
             "superseded": isinstance(row["superseded_by"], str)}
            for row in table.to_dict("records")]
    create_table_artifact(key="status", table=rows,
                          description=f"{store.url}: each video's state in each stage")
    files = store.exported_files()
    lines = [f"# Dataset in `{store.url}`", ""]
    lines += [f"- {label}: `{path}`" for label, path in files] or ["Nothing exported yet."]
    create_markdown_artifact(key="dataset", markdown="\n".join(lines),
                             description="Where the dataset files and the report are")
    if not is_local(store.url):
        create_link_artifact(key="store", link=store.url, link_text=store.url,
                             description="The dataset store")


def publish_on_end(flow, flow_run, state) -> None:
    """A flow state hook (``on_completion`` and ``on_failure``): publish the results of the
    flow run's ``store`` parameter; a store that cannot be read publishes nothing."""
    import contextlib

    from handlabel.storage.store import StoreError

    with contextlib.suppress(StoreError, OSError):
        publish_results(flow_run.parameters["store"])


PUBLISHING = {"on_completion": [publish_on_end], "on_failure": [publish_on_end]}
