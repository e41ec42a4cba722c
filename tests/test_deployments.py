"""prefect.yaml: every deployment names an importable flow and parameters it accepts."""

from __future__ import annotations

import inspect

import pytest
import yaml
from prefect import Flow
from prefect.utilities.importtools import import_object

from .conftest import ROOT

DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_entrypoint_and_parameters(deployment):
    flow = import_object(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    signature = inspect.signature(flow.fn)
    assert set(deployment["parameters"]) <= set(signature.parameters)
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    assert required <= set(deployment["parameters"])
    assert deployment["work_pool"]["name"] == "handlabel-process"
