"""JSON Schemas (draft 2020-12) of the documents graspseg hands to other programs.

``perception_result``: ``result.json`` / :meth:`graspseg.pipeline.PerceptionResult.to_dict` (full or compact);
``grasp_response``: :meth:`graspseg.plugin.GraspResponse.to_dict`, what a planner commands. Each document
carries ``schema`` (its name) and ``schema_version``; a change that breaks a reader raises the version.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from ..core.errors import InputError, MissingDependencyError

SCHEMA_DIR = Path(__file__).resolve().parent
#: Schema names, each a ``<name>.schema.json`` file here.
SCHEMAS: tuple[str, ...] = ("perception_result", "grasp_response")


def schema_path(name: str) -> Path:
    """The schema file of ``name`` (one of :data:`SCHEMAS`)."""
    if name not in SCHEMAS:
        raise InputError(f"no schema {name!r}; graspseg ships {', '.join(SCHEMAS)}")
    return SCHEMA_DIR / f"{name}.schema.json"


@cache
def load_schema(name: str) -> dict:
    """The parsed JSON Schema of ``name``."""
    return json.loads(schema_path(name).read_text())


def validate(document: dict, name: str | None = None) -> None:
    """Raise :class:`InputError` naming the first path that breaks the schema.

    ``name`` defaults to the document's own ``schema`` key (``graspseg.<name>``).
    """
    try:
        import jsonschema
    except ImportError as e:
        raise MissingDependencyError("jsonschema", "service", "validating documents against graspseg's schemas") from e
    if name is None:
        tag = document.get("schema", "") if isinstance(document, dict) else ""
        name = tag.removeprefix("graspseg.")
    validator = jsonschema.Draft202012Validator(load_schema(name))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InputError(f"document does not match the {name} schema at {where}: {e.message}"
                         + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
