"""The committed JSON Schemas are exactly what the models generate: a payload change cannot slip in
without regenerating (`python -m reciprocity.contracts.schemas`) and, usually, a new version."""

import json

import pytest
from reciprocity.contracts.events import EVENT_TYPES
from reciprocity.contracts.schemas import SCHEMA_DIR, all_models, file_stem, render, schema_of
from reciprocity.contracts.topics import TOPIC_SPECS


@pytest.mark.parametrize("model", all_models(), ids=file_stem)
def test_generated_schema_equals_committed_file(model) -> None:
    path = SCHEMA_DIR / f"{file_stem(model)}.json"
    assert path.exists(), f"{path.name} is missing: run python -m reciprocity.contracts.schemas"
    assert path.read_text() == render(model), (
        f"{model.TYPE} v{model.VERSION} changed but {path.name} did not; if the payload changed, raise the "
        "version and add an upcaster, then regenerate the schemas"
    )


def test_no_schema_file_without_a_model() -> None:
    expected = {f"{file_stem(m)}.json" for m in all_models()}
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == expected


def test_schema_names_type_version_and_topic() -> None:
    for model in all_models():
        schema = schema_of(model)
        assert schema["title"] == model.TYPE
        assert schema["x-version"] == model.VERSION
        assert schema["x-topic"] in TOPIC_SPECS
        assert json.loads(render(model)) == schema


def test_every_event_type_lives_on_a_registered_topic() -> None:
    assert {cls.TOPIC for cls in EVENT_TYPES.values()} == set(TOPIC_SPECS)
