"""A fast, validating decoder for records our own producers write, with the pydantic path as fallback.

`decode()` (envelope.py) spends most of a projection's decoding time building pydantic models. Here
msgspec parses and checks the same record in C against a decoder derived, at import, from the very
pydantic models in `events.py`, then hands back the same pydantic objects, filled without validating
them again (the check was done). The derived decoder accepts less than pydantic, never more: pydantic
is lax (`"5"` for an int, `5.0`, `"yes"` for a bool, dates with a time), msgspec is strict, and
whatever this module does not accept it declines (returns None), and `decode()` takes the pydantic path,
which accepts or raises ContractError exactly as before.

Declined on any doubt, automatically:
- a type this process does not know, or a version other than the event's newest (old versions go
  through the upcasters on the pydantic path);
- an event whose model uses anything outside the small vocabulary translated below (field validators
  other than the bounds' cleaners, before/wrap model validators, serialisers, nested models in lists,
  e-mail addresses, default factories, any constraint not listed): adding one to a contract silently
  moves that type to the pydantic path, it never makes this path lenient;
- a value an "after" model validator refuses: those validators (the sealed values' `_consistent`, the
  events' "sealed for exactly these members") are not translated but run, the very functions pydantic
  runs, on the instance built here; any exception declines.

Nested models (the `Sealed` personal values, a circle's policy) are translated like events, field by
field, into nested msgspec shapes, and built bottom-up into the same pydantic objects.
- any value msgspec refuses, and date-times that are not plain RFC 3339 with an offset.

The same shapes also give each type a checked struct (`checked_decoder`): the same checks, the payload
parsed once, nothing built from pydantic; a projection's hot path reads its most frequent events so.

tests/unit/test_contracts_fastcodec.py holds both paths to agreeing on every golden file and on
generated records, valid and not.
"""

from __future__ import annotations

import enum
import functools
import operator
import re
import types
import typing
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

import annotated_types as at
import msgspec
from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic.types import StringConstraints
from pydantic_core import PydanticUndefined

from . import bounds
from .envelope import Envelope
from .events import EVENT_TYPES, Event
from .ids import SLUG_PATTERN
from .upcasting import has_upcaster


class Unsupported(Exception):
    """A model uses something this module does not translate: its type stays on the pydantic path."""


# --- the envelope ----------------------------------------------------------------------------------


class _RawEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    event_id: uuid.UUID
    type: Annotated[str, msgspec.Meta(min_length=1)]
    version: Annotated[int, msgspec.Meta(ge=1)]
    occurred_at: str  # checked below: msgspec's datetime parsing is laxer than pydantic's AwareDatetime
    producer: Annotated[str, msgspec.Meta(min_length=1)]
    key: Annotated[str, msgspec.Meta(min_length=1)]
    payload: msgspec.Raw


_ENVELOPE = msgspec.json.Decoder(_RawEnvelope)
# The same fields but `type` (a tag) and `payload` (a type's struct), for checked_decoder's envelopes.
_TYPED_ENVELOPE_FIELDS = [(f.name, f.type) for f in msgspec.structs.fields(_RawEnvelope)
                          if f.name not in ("type", "payload")]
_ANY = msgspec.json.Decoder()
# What every producer of ours writes (datetime.isoformat of an aware UTC time); anything else declines.
_AWARE_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})\Z")
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)


# --- events: msgspec types derived from the pydantic models -------------------------------------


def _pattern(p: str) -> str:
    """A pydantic (Rust regex) pattern for Python's `re` (what msgspec uses): `$` there is the end of the
    text, in `re` it also matches before a final newline, so "ann\\n" would pass here and fail there."""
    if not (p.startswith("^") and p.endswith("$")) or "$" in p[:-1] or "\\" in p:
        raise Unsupported(f"pattern {p!r}")
    return p[:-1] + r"\Z"


def _meta(metadata: list[Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, at.MinLen):
            meta["min_length"] = m.min_length
        elif isinstance(m, at.MaxLen):
            meta["max_length"] = m.max_length
        elif isinstance(m, at.Ge):
            meta["ge"] = m.ge
        elif isinstance(m, at.Le):
            meta["le"] = m.le
        elif isinstance(m, at.Gt):
            meta["gt"] = m.gt
        elif isinstance(m, at.Lt):
            meta["lt"] = m.lt
        elif isinstance(m, StringConstraints):
            if any(getattr(m, a) is not None for a in ("strip_whitespace", "to_upper", "to_lower", "strict",
                                                        "ascii_only")):
                raise Unsupported(repr(m))
            for a in ("min_length", "max_length"):
                if getattr(m, a) is not None:
                    meta[a] = getattr(m, a)
            if m.pattern is not None:
                meta["pattern"] = _pattern(str(m.pattern))  # checked after decoding: see _EventDecoder
        elif isinstance(m, FieldInfo):  # Annotated[..., Field(...)] inside a type
            meta.update(_meta(m.metadata))
        else:
            raise Unsupported(repr(m))
    return meta


# The validators of contracts/bounds.py, each as the condition under which it leaves a value as it is:
# a value that meets it is accepted here unchanged; any other declines to the pydantic path, which
# cleans it (texts, far pause ends) or refuses it (dates out of bounds).
_UNCHANGED_BY: dict[Callable[..., Any], Callable[[Any], bool]] = {
    bounds.clean_free_text: lambda v: _NOT_IN_FREE_TEXT.search(v) is None,
    bounds.clean_one_line: lambda v: _NOT_IN_ONE_LINE.search(v) is None,
    bounds.within_event_days: lambda d: bounds.EARLIEST_EVENT_DAY <= d <= bounds.LATEST_EVENT_DAY,
    bounds.pause_end_on_read: lambda d: d <= bounds.LATEST_EVENT_DAY,
}
_NOT_IN_FREE_TEXT: re.Pattern[str] = getattr(bounds, "_NOT_IN_FREE_TEXT")  # noqa: B009 (the very patterns the cleaners use)
_NOT_IN_ONE_LINE: re.Pattern[str] = getattr(bounds, "_NOT_IN_ONE_LINE")  # noqa: B009


def _checks_of(metadata: list[Any], checks: list[Callable[[Any], bool]] | None) -> list[Any]:
    """`metadata` without the known validators, whose conditions go to `checks` (None: not allowed here)."""
    rest = []
    for m in metadata:
        if isinstance(m, BeforeValidator | AfterValidator):
            condition = _UNCHANGED_BY.get(m.func)
            if condition is None or checks is None:
                raise Unsupported(repr(m))
            checks.append(condition)
        else:
            rest.append(m)
    return rest


def _translate(annotation: Any, metadata: list[Any], checks: list[Callable[[Any], bool]] | None = None,
               nested: Callable[[_Shape], Any] = lambda shape: shape.typed_dict) -> Any:
    """The msgspec type checking what pydantic checks for `annotation` with `metadata` (or Unsupported);
    conditions of known validators on the (top-level, non-None) value go to `checks`; a nested model is
    `nested(its shape)`: its typed dict, or its checked struct."""
    metadata = _checks_of(metadata, checks)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        return _translate(inner, [*extra, *metadata], checks, nested)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) != 2 or type(None) not in args:
            raise Unsupported(repr(annotation))
        (inner,) = [a for a in args if a is not type(None)]
        return _translate(inner, metadata, checks, nested) | None
    if origin is list:
        (item,) = typing.get_args(annotation)
        item_type = _translate(item, [], None, nested)
        meta = _meta(metadata)
        return Annotated[list[item_type], msgspec.Meta(**meta)] if meta else list[item_type]  # type: ignore[valid-type]
    if origin is Literal:
        if not all(isinstance(v, str) for v in typing.get_args(annotation)) or metadata:
            raise Unsupported(repr(annotation))
        return annotation
    if annotation in (str, int):
        meta = _meta(metadata)
        return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation
    if annotation is float:
        # pydantic takes a JSON integer for a float as msgspec does (as a float); NaN/Infinity: msgspec
        # refuses them outright, so whatever a model's allow_inf_nan says, nothing lenient passes here.
        meta = _meta(metadata)
        return Annotated[float, msgspec.Meta(**meta)] if meta else float
    if annotation in (bool, date) and not metadata:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum) and not metadata:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not metadata:
        return nested(_shape_of(annotation))
    raise Unsupported(repr(annotation))


class _Shape:
    """One pydantic model (an event or a model nested in one) as a msgspec TypedDict, with what msgspec
    does not check itself: patterns, the bounds' conditions, unknown keys of nested objects, defaults,
    nested models to build, and the model's "after" validators to run on the built instance."""

    def __init__(self, cls: type[BaseModel]) -> None:
        if cls.model_config.get("extra") != "forbid" or cls.model_config.get("strict"):
            raise Unsupported("model config")
        decorators = cls.__pydantic_decorators__
        if any((decorators.validators, decorators.field_validators, decorators.root_validators,
                decorators.field_serializers, decorators.model_serializers,
                decorators.computed_fields)) or cls.__pydantic_post_init__ or cls.__private_attributes__:
            raise Unsupported("validators, serialisers or private attributes")
        # "after" model validators take the finished instance: run as they are, so never out of step.
        self.after: list[Callable[[Any], Any]] = []
        for name, decorator in decorators.model_validators.items():
            if decorator.info.mode != "after" or decorator.shim is not None:
                raise Unsupported(f"model validator {name} ({decorator.info.mode})")
            self.after.append(decorator.func)
        fields: dict[str, Any] = {}
        struct_fields: list[tuple[Any, ...]] = []
        self.defaults: dict[str, Any] = {}
        # Patterns (the slugs) are matched after decoding, through a set of values seen valid before:
        # msgspec runs Python's `re` on every value, most of its decoding time, for a few hundred
        # distinct member and circle ids.
        self.patterns: list[tuple[str, bool, re.Pattern[str]]] = []
        self.checks: list[tuple[str, Callable[[Any], bool]]] = []
        self.nested: list[tuple[str, _Shape]] = []
        for name, info in cls.model_fields.items():
            if info.alias not in (None, name) or info.validation_alias is not None or info.default_factory:
                raise Unsupported(f"{name}: alias or default factory")
            checks: list[Callable[[Any], bool]] = []
            typ = _translate(info.annotation, info.metadata, checks)
            typ, pattern, in_list = _take_pattern(typ)
            if pattern is not None:
                self.patterns.append((name, in_list, re.compile(pattern)))
            self.checks.extend((name, check) for check in checks)
            model = _nested_model(info.annotation)
            if model is not None:
                self.nested.append((name, _shape_of(model)))
            struct_type = _take_pattern(_translate(info.annotation, info.metadata, [], _struct_type))[0]
            if info.default is PydanticUndefined:
                fields[name] = typ
                struct_fields.append((name, struct_type))
            else:
                if not isinstance(info.default, str | int | float | bool | type(None) | enum.Enum):
                    raise Unsupported(f"{name}: default {info.default!r}")
                fields[name] = typing.NotRequired[typ]
                struct_fields.append((name, struct_type, info.default))
                self.defaults[name] = info.default
        self.typed_dict: Any = typing.TypedDict(f"Fast{cls.__name__}", fields)  # type: ignore[misc]  # built at run time
        self.cls = cls
        self.names = frozenset(cls.model_fields)
        self.order = list(cls.model_fields)
        self.build: Callable[[dict[str, Any], Any], Any] = _compile_build(self)
        # The same fields as a msgspec struct that refuses unknown keys itself, lending the model's own
        # properties and methods (a sealed value's `text`, an event's `key()`): see `checked_decoder`.
        self.struct: type[msgspec.Struct] = msgspec.defstruct(
            f"Checked{cls.__name__}", struct_fields, kw_only=True, frozen=True, forbid_unknown_fields=True,
            namespace={**_lent_by(cls), "MODEL": cls})
        self.check: Callable[[Any], bool] = _compile_check(self)


def _compile_build(shape: _Shape) -> Callable[[dict[str, Any], Any], Any]:
    """`shape`'s build function, `(given, parsed) -> model instance or None (decline)`, as Python source
    written for its fields: no loop over lists of checks, no lookup of a field by name that the source
    can spell. `given`: the object as msgspec decoded it against `typed_dict`; `parsed`: the same object
    parsed without a shape (a TypedDict skips unknown keys, the models forbid them: nested objects are
    checked here against it).

    In order: the patterns (the common case first, in C: every required slug and slug list holds values
    matched before), the bounds' conditions, nested models built bottom-up, the instance filled in the
    model's field order (model_dump_json follows it) with defaults for absent fields, then the model's
    "after" validators, run as pydantic would run them; any exception there declines."""
    env: dict[str, Any] = {"_cls": shape.cls, "_new": _new,
                           "_set_dict": _SET_DICT, "_set_fields_set": _SET_FIELDS_SET, "_set_extra": _SET_EXTRA,
                           "_set_private": _SET_PRIVATE}
    lines = ["def build(g, p):", *_field_checks(shape, env, lambda name: f"g[{name!r}]",
                                                lambda name: f"g.get({name!r})", "None")]
    built: dict[str, str] = {}
    for i, (name, inner_shape) in enumerate(shape.nested):
        env[f"_names{i}"], env[f"_build{i}"] = inner_shape.names, inner_shape.build
        lines += [f"    n{i} = g.get({name!r})",
                  f"    if n{i} is not None:",
                  f"        inner = p.get({name!r})",
                  f"        if type(inner) is not dict or not inner.keys() <= _names{i}:",
                  "            return None",
                  f"        n{i} = _build{i}(n{i}, inner)",
                  f"        if n{i} is None:",
                  "            return None"]
        built[name] = f"n{i}"
    values = []
    for name in shape.order:
        if name in built:  # None when absent: a nested model's default is None or it is required
            if name in shape.defaults and shape.defaults[name] is not None:
                raise Unsupported(f"{name}: a nested model with a default")
            values.append(f"{name!r}: {built[name]}")
        elif name in shape.defaults:
            env[f"_d_{name}"] = shape.defaults[name]
            values.append(f"{name!r}: g.get({name!r}, _d_{name})")
        else:
            values.append(f"{name!r}: g[{name!r}]")
    lines += ["    o = _new(_cls)",
              f"    _set_dict(o, {{{', '.join(values)}}})",
              "    _set_fields_set(o, set(g))",
              "    _set_extra(o, None)",
              "    _set_private(o, None)"]
    if shape.after:
        lines.append("    try:")
        for i, validator in enumerate(shape.after):
            env[f"_after{i}"] = validator
            lines.append(f"        o = _after{i}(o)")
        lines += ["    except Exception:",  # what pydantic reports as a validation error: its path decides
                  "        return None",
                  "    return o if type(o) is _cls else None"]
    else:
        lines.append("    return o")
    exec(compile("\n".join(lines) + "\n", f"<fast build of {shape.cls.__name__}>", "exec"), env)
    return env["build"]  # type: ignore[no-any-return]


def _field_checks(shape: _Shape, env: dict[str, Any], required: Callable[[str], str],
                  optional: Callable[[str], str], refused: str) -> list[str]:
    """Source lines checking `shape`'s patterns and the bounds' conditions: `required(name)` and
    `optional(name)` spell a field's value (present for sure, or None when absent), `refused` is what
    the function returns on a value that fails."""
    env.update({"_M": _MATCHED, "_matches": _matches})
    lines = []

    def pattern_checks(patterns: list[tuple[str, bool, re.Pattern[str]]], indent: str) -> list[str]:
        out = []
        for name, in_list, pattern in patterns:
            env[f"_p_{name}"] = pattern
            out += [f"{indent}v = {optional(name)}",
                    f"{indent}if v is not None:"]  # absent (a default applies) or None: nothing to match
            if in_list:
                out += [f"{indent}    for x in v:",
                        f"{indent}        if x not in _M and not _matches(_p_{name}, x):",
                        f"{indent}            return {refused}"]
            else:
                out += [f"{indent}    if v not in _M and not _matches(_p_{name}, v):",
                        f"{indent}        return {refused}"]
        return out

    slug = [(name, in_list) for name, in_list, pattern in shape.patterns
            if pattern.pattern == _SLUG and name not in shape.defaults]
    if slug:
        scalars = [required(name) for name, in_list in slug if not in_list]
        known = ([f"_M.issuperset(({', '.join(scalars)},))"] if scalars else []) + [
            f"_M.issuperset({required(name)})" for name, in_list in slug if in_list]
        lines.append(f"    if not ({' and '.join(known)}):")
        lines += pattern_checks(shape.patterns, "        ") or ["        pass"]
        others = [p for p in shape.patterns if (p[0], p[1]) not in slug]
        if others:
            lines.append("    else:")
            lines += pattern_checks(others, "        ")
    else:
        lines += pattern_checks(shape.patterns, "    ")
    for i, (name, check) in enumerate(shape.checks):
        env[f"_k{i}"] = check
        lines += [f"    v = {optional(name)}",
                  f"    if v is not None and not _k{i}(v):",
                  f"        return {refused}"]
    return lines


def _compile_check(shape: _Shape) -> Callable[[Any], bool]:
    """`shape`'s check of a checked struct msgspec decoded (types, lengths, ranges and unknown keys are
    msgspec's): the same patterns and bounds' conditions as `build`, nested structs checked alike, then
    the model's "after" validators run on the struct itself (they read attributes: the struct has the
    model's); any exception, or a validator handing back another object, fails it."""
    env: dict[str, Any] = {}
    lines = ["def check(s):", *_field_checks(shape, env, lambda name: f"s.{name}", lambda name: f"s.{name}",
                                             "False")]
    for i, (name, inner_shape) in enumerate(shape.nested):
        env[f"_check{i}"] = inner_shape.check
        lines += [f"    if s.{name} is not None and not _check{i}(s.{name}):",
                  "        return False"]
    if shape.after:
        lines.append("    try:")
        for i, validator in enumerate(shape.after):
            env[f"_after{i}"] = validator
            lines += [f"        if _after{i}(s) is not s:",
                      "            return False"]
        lines += ["    except Exception:",
                  "        return False"]
    lines.append("    return True")
    exec(compile("\n".join(lines) + "\n", f"<check of {shape.cls.__name__}>", "exec"), env)
    return env["check"]  # type: ignore[no-any-return]


def _struct_type(shape: _Shape) -> Any:
    return shape.struct


def _lent_by(cls: type[BaseModel]) -> dict[str, Any]:
    """What a checked struct borrows from its model: the properties and plain methods its own classes
    define (not pydantic's), and its TYPE and VERSION."""
    lent: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not issubclass(klass, BaseModel) or klass is BaseModel:
            continue
        for name, value in vars(klass).items():
            if isinstance(value, property | types.FunctionType) and not name.startswith("__"):
                lent[name] = value
    for name in ("TYPE", "VERSION"):
        if hasattr(cls, name):
            lent[name] = getattr(cls, name)
    return lent


_SHAPES: dict[type[BaseModel], _Shape] = {}


def _shape_of(cls: type[BaseModel]) -> _Shape:
    found = _SHAPES.get(cls)
    if found is None:
        found = _SHAPES[cls] = _Shape(cls)
    return found


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a field typed `Model` or `Model | None` (a model anywhere else is Unsupported)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


class _EventDecoder:
    """Decodes one (type, newest version) payload into its pydantic model."""

    def __init__(self, cls: type[Event]) -> None:
        self.shape = _Shape(cls)
        self.names = self.shape.names
        self.decoder = msgspec.json.Decoder(self.shape.typed_dict)

    def decode(self, raw: bytes, parsed: dict[str, Any]) -> Event | None:
        """`parsed`: the payload as parsed without a shape (a TypedDict lets unknown keys pass; the
        models forbid them)."""
        if not parsed.keys() <= self.names:
            return None
        return self.shape.build(self.decoder.decode(raw), parsed)  # type: ignore[no-any-return]


_MATCHED: set[str] = set()


def _matches(pattern: re.Pattern[str], value: str) -> bool:
    if pattern.match(value) is None:
        return False
    if pattern.pattern == _SLUG:  # the one pattern whose matches are remembered (any other: every time)
        if len(_MATCHED) > 200_000:
            _MATCHED.clear()
        _MATCHED.add(value)
    return True


_SLUG = _pattern(SLUG_PATTERN)


def _take_pattern(typ: Any) -> tuple[Any, str | None, bool]:
    """(the type without its pattern, the pattern, whether it applies to list items) for a field that
    is a string, an optional string or a list of strings with a pattern; anything else unchanged."""
    def split(t: Any) -> tuple[Any, str | None]:
        if typing.get_origin(t) is Annotated:
            base, *metas = typing.get_args(t)
            (meta,) = metas
            if meta.pattern is not None:
                rest = {k: getattr(meta, k) for k in ("min_length", "max_length", "ge", "le", "gt", "lt")
                        if getattr(meta, k) is not None}
                return (Annotated[base, msgspec.Meta(**rest)] if rest else base), meta.pattern
        return t, None

    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(typ) if a is not type(None)]
        base, pattern = split(inner)
        if pattern is not None and base is not str and typing.get_origin(base) is not Annotated:
            raise Unsupported(repr(typ))
        return (base | None if pattern else typ), pattern, False
    if origin is list:
        (item,) = typing.get_args(typ)
        base, pattern = split(item)
        return (list[base] if pattern else typ), pattern, True  # type: ignore[valid-type]
    if origin is Annotated and typing.get_origin(typing.get_args(typ)[0]) is list:
        # A constrained list of patterned items (a sealed value's `to`): msgspec checks the list's
        # length, the items' pattern is matched after decoding like any other.
        listed, list_meta = typing.get_args(typ)
        (item,) = typing.get_args(listed)
        base, pattern = split(item)
        return (Annotated[list[base], list_meta] if pattern else typ), pattern, True  # type: ignore[valid-type]
    base, pattern = split(typ)
    return base, pattern, False


# BaseModel's slots, set through their descriptors (a quarter cheaper than object.__setattr__ by name).
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_new = object.__new__


def _filled(cls: type[BaseModel], values: dict[str, Any], fields_set: set[str]) -> Any:
    """A model instance from values already checked, as pydantic's model_construct builds one (without
    its per-field bookkeeping, which is most of its cost)."""
    obj = _new(cls)
    _SET_DICT(obj, values)
    _SET_FIELDS_SET(obj, fields_set)
    _SET_EXTRA(obj, None)
    _SET_PRIVATE(obj, None)
    return obj


def _build(event_types: dict[str, type[Event]]) -> tuple[dict[tuple[str, int], _EventDecoder], dict[str, str]]:
    fast: dict[tuple[str, int], _EventDecoder] = {}
    declined: dict[str, str] = {}
    for name, cls in event_types.items():
        if has_upcaster(name, cls.VERSION):  # not its newest version after all: leave it to the upcasters
            declined[name] = "an upcaster starts at its newest version"
            continue
        try:
            fast[(name, cls.VERSION)] = _EventDecoder(cls)
        except (Unsupported, TypeError) as err:
            declined[name] = str(err)
    return fast, declined


FAST, DECLINED = _build(EVENT_TYPES)


def decode_trusted(raw: bytes | str, fast: dict[tuple[str, int], _EventDecoder] | None = None,
                   ) -> tuple[Envelope, Event] | None:
    """(envelope, event) as `decode` returns them, or None: not a record this path vouches for (then
    the pydantic path decides, and raises ContractError if it is not valid)."""
    try:
        env = _ENVELOPE.decode(raw)
        found = (FAST if fast is None else fast).get((env.type, env.version))
        if found is None or not _AWARE_DATETIME.match(env.occurred_at):
            return None
        occurred_at = datetime.fromisoformat(env.occurred_at)
        payload = env.payload
        payload_dict = _ANY.decode(payload)
        if type(payload_dict) is not dict:
            return None
        event = found.decode(payload, payload_dict)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
        return None
    if event is None:
        return None
    envelope = _filled(Envelope, {"event_id": env.event_id, "type": env.type, "version": env.version,
                                  "occurred_at": occurred_at, "producer": env.producer, "key": env.key,
                                  "payload": payload_dict}, set(_ENVELOPE_FIELDS))
    return envelope, event


class CheckedEnvelope(msgspec.Struct, frozen=True):
    """The envelope of a record `checked_decoder` decoded, checked as `Envelope` checks it (its payload is
    the checked struct beside it)."""

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    producer: str
    key: str


def checked_decoder(*event_types: type[Event]) -> Callable[[bytes | str], tuple[CheckedEnvelope, Any] | None]:
    """A decoder of records of `event_types` (their newest versions) into (CheckedEnvelope, checked
    struct), or None for anything else or anything in doubt: then `decode` decides, as for every record.

    For a projection's hot path: the checks are `decode_trusted`'s (the same types, patterns, bounds and
    "after" validators, from the same shapes), but nothing is built from pydantic, and the payload is
    parsed once (the struct refuses unknown keys itself). The struct has the model's fields, properties
    and methods, and `MODEL`, its model.
    tests/unit/test_contracts_fastcodec.py holds it to agreeing with the pydantic path like `decode_trusted`."""
    shapes = {cls.TYPE: (cls.VERSION, FAST[(cls.TYPE, cls.VERSION)].shape) for cls in event_types
              if (cls.TYPE, cls.VERSION) in FAST}
    if not shapes:
        return lambda raw: None
    # One envelope struct per type, tagged by `type` and holding that type's struct as its payload: the
    # record is parsed in one pass (two passes, envelope then payload, cost a third more). Another type
    # fails the tag, which declines like any other refusal.
    envelopes = [msgspec.defstruct(f"Checked{name}Envelope", [*_TYPED_ENVELOPE_FIELDS, ("payload", shape.struct)],
                                   tag_field="type", tag=name, forbid_unknown_fields=True)
                 for name, (_, shape) in shapes.items()]
    decoder = msgspec.json.Decoder(functools.reduce(operator.or_, envelopes))  # one type, or their union
    checks = {envelope: (name, version, shape.check)
              for envelope, (name, (version, shape)) in zip(envelopes, shapes.items(), strict=True)}

    def decode_checked(raw: bytes | str) -> tuple[CheckedEnvelope, Any] | None:
        try:
            env: Any = decoder.decode(raw)  # one of `envelopes` (made at run time: no static type)
            name, version, check = checks[type(env)]
            payload = env.payload
            if env.version != version or not _AWARE_DATETIME.match(env.occurred_at) or not check(payload):
                return None
            occurred_at = datetime.fromisoformat(env.occurred_at)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            return None
        return CheckedEnvelope(env.event_id, name, version, occurred_at, env.producer, env.key), payload

    return decode_checked


def checked_struct(cls: type[Event]) -> type[msgspec.Struct] | None:
    """The checked struct `checked_decoder` hands back for `cls`, None if `cls` takes the pydantic path."""
    found = FAST.get((cls.TYPE, cls.VERSION))
    return found.shape.struct if found is not None else None


def coverage() -> dict[str, str]:
    """Per event type: "fast", or why it takes the pydantic path (for the bench and operators)."""
    return {name: "fast" if (name, cls.VERSION) in FAST else f"pydantic: {DECLINED.get(name, '?')}"
            for name, cls in sorted(EVENT_TYPES.items())}

