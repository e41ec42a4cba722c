"""GPU tasks find GPU workers: inside a flow, the GPU annotation asks the flow's own Dask
cluster (a real LocalCluster with separate worker processes), and says so when it cannot."""

from __future__ import annotations

import logging

import dask
from prefect import flow
from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig
from handlabel.flows.runner import gpu_annotation


def _annotations_on(resources: dict) -> dict:
    @flow(task_runner=DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
        "n_workers": 1, "processes": True, "threads_per_worker": 1, "resources": resources}))
    def probe() -> dict:
        with gpu_annotation(DaskConfig()):
            return dict(dask.get_annotations())

    return probe()


def test_tasks_are_annotated_for_the_gpu_workers_of_the_flows_cluster(prefect_api):
    assert _annotations_on({"GPU": 1}) == {"resources": {"GPU": 1}}


def test_a_cluster_without_gpus_gets_no_annotation(prefect_api):
    assert _annotations_on({}) == {}


def test_a_cluster_that_cannot_be_asked_is_said_so(caplog):
    with caplog.at_level(logging.WARNING), gpu_annotation(DaskConfig()):
        assert dict(dask.get_annotations()) == {}
    assert "cannot ask the Dask cluster" in caplog.text
