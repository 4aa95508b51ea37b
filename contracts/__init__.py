"""The event and command contracts every service speaks: the only shared vocabulary.

Events are the source of truth. Each is a pydantic model with a type name and schema version;
JSON Schemas generated from them live in `schemas/`, golden examples per version in `golden/`.
"""
