"""Render the configuration reference (docs/configuration.md) from the pydantic models."""

from __future__ import annotations

import json

from pydantic import BaseModel

from handlabel.config import HandlabelConfig

HEADER = """# Configuration reference

One YAML file, a section per stage; every key is optional and shows its default here.
Generated from `handlabel/config.py` by `handlabel config --reference` (a test checks that
this file is current). `handlabel config` prints the effective configuration.

"""


def _default(field) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value)}`"


def _section(model: type[BaseModel], prefix: str) -> list[str]:
    lines = [f"## `{prefix}`", "", (model.__doc__ or "").strip(), "",
             "| key | default | description |", "|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((annotation, f"{prefix}.{name}"))
            continue
        lines.append(f"| `{name}` | {_default(field)} | {field.description or ''} |")
    lines.append("")
    for sub, sub_prefix in nested:
        lines += _section(sub, sub_prefix)
    return lines


def config_reference() -> str:
    lines = [HEADER.rstrip("\n"), ""]
    for name, field in HandlabelConfig.model_fields.items():
        lines += _section(field.annotation, name)
    return "\n".join(lines)
