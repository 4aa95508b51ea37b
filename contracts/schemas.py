"""JSON Schemas generated from the models, committed under `schemas/`, and golden examples.

`python -m reciprocity.contracts.schemas` rewrites the schema files; a unit test fails when a model
and its committed schema disagree, so a payload change cannot slip in without a new version.
"""

import json
import sys
from pathlib import Path
from typing import Any

from .events import EVENT_TYPES, Event
from .legacy import LEGACY_MODELS

HERE = Path(__file__).parent
SCHEMA_DIR = HERE / "schemas"
GOLDEN_DIR = HERE / "golden"


def all_models() -> list[type[Event]]:
    return [*EVENT_TYPES.values(), *LEGACY_MODELS]


def file_stem(model: type[Event]) -> str:
    return f"{model.TYPE}.v{model.VERSION}"


def schema_of(model: type[Event]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["title"] = model.TYPE
    schema["$id"] = f"urn:reciprocity:event:{model.TYPE}:v{model.VERSION}"
    schema["x-topic"] = model.TOPIC
    schema["x-version"] = model.VERSION
    return schema


def render(model: type[Event]) -> str:
    return json.dumps(schema_of(model), indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for model in all_models():
        path = SCHEMA_DIR / f"{file_stem(model)}.json"
        path.write_text(render(model))
        written.append(path)
    return written


def golden_examples() -> list[tuple[Path, dict[str, Any]]]:
    """Every golden envelope on disk, as (path, parsed JSON)."""
    return [(p, json.loads(p.read_text())) for p in sorted(GOLDEN_DIR.glob("*.json"))]


if __name__ == "__main__":
    for path in write_all():
        print(path.relative_to(HERE.parent), file=sys.stderr)
