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


def test_every_source_package_is_declared_for_installation():
    """A wheel installs only the packages pyproject lists: every folder that holds modules."""
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    mapping = {"flows": "handlabel.flows", "tasks": "handlabel.tasks",
               "models": "handlabel.models", "storage": "handlabel.storage",
               "handlabel": "handlabel"}
    found = set()
    for top, name in mapping.items():
        for module in (ROOT / top).rglob("*.py"):  # a folder of modules, __init__.py or not
            relative = module.parent.relative_to(ROOT / top).parts
            found.add(".".join([name, *relative]))
    assert found <= declared, f"not declared: {found - declared}"
    for package in declared - found:  # data-only packages must at least exist
        top, *rest = package.split(".")[1:] or ["handlabel"]
        assert (ROOT / top).joinpath(*rest).is_dir(), package
