"""What a ``post_save`` or ``post_delete`` becomes on its way to a worker, and
what the worker's receiver gets back.

An instance cannot travel: it belongs to a session in another process. It
travels as its model's name and primary key, and the worker loads it again. A
deleted row cannot be loaded, so a ``post_delete`` event carries the row's
column values, and the worker's receiver gets a detached copy built from them.
``created``, ``update_fields`` and ``changes`` travel as they are. Values are
encoded by ``sa_signals.celery.encoding``, which user data cannot forge.

An event reaches a worker through a broker, and so may come from anyone who can
publish there: the worker trusts nothing in it. It finds the model among the
classes mapped in its own process (SQLAlchemy's registries), by name, and
checks every field against what that model declares; anything else is a
``RefusedEvent``. Nothing named in an event is ever imported or called.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import DataError
from sqlalchemy.orm import ColumnProperty, Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from sa_signals.celery.encoding import (
    EnumClass,
    declared_enum,
    decode_value,
    dumps,
    encode_value,
    loads,
)
from sa_signals.dispatch import Signal, describe
from sa_signals.internals import existing_mappers
from sa_signals.signals import post_delete, post_save

__all__ = ["RefusedEvent"]

# The signals whose receivers can run in the background: both are sent once the
# row is written, with a primary key to find it by (pre_save's new instance has
# none yet).
BACKGROUND_SIGNALS: dict[Signal, str] = {post_save: "post_save", post_delete: "post_delete"}


class RefusedEvent(ValueError):
    """A message a background receiver's task will not run: it is not an event
    sa-signals wrote for this receiver (forged, damaged, or naming a model this
    process has not mapped). Celery reports the task as failed with this error,
    and never retries it."""


# -- at the flush --------------------------------------------------------------------------------


def encoded_event(
    signal: Signal, named: dict[str, Any], receiver: Any, traceparent: str | None = None
) -> tuple[str, str]:
    """The id and the JSON text of one send of ``signal``'s event; with the
    ``traceparent`` of the span that wrote it, when tracing is on.

    :raises TypeError: a value the encoding has no place for (a set in
        ``changes``, say), naming the receiver, the model and the attribute.
    """
    instance = named["instance"]
    event_id = str(uuid.uuid4())
    try:
        event: dict[str, Any] = {
            "event_id": event_id,
            "signal": BACKGROUND_SIGNALS[signal],
            **_reference(instance),
        }
        if traceparent is not None:
            event["traceparent"] = traceparent
        if signal is post_save:
            mapper = inspect(type(instance))
            update_fields = named["update_fields"]
            event["created"] = named["created"]
            event["raw"] = named["raw"]
            event["update_fields"] = None if update_fields is None else sorted(update_fields)
            event["changes"] = {
                key: [_encoded(mapper, key, old), _encoded(mapper, key, new)]
                for key, (old, new) in named["changes"].items()
            }
        else:
            event["values"] = _column_values(instance)
            origin = named["origin"]
            if origin is instance:
                event["origin"] = "instance"
            elif isinstance(inspect(type(origin), raiseerr=False), Mapper):
                event["origin"] = {**_reference(origin), "values": _column_values(origin)}
            else:  # a bulk DELETE statement
                event["origin"] = None
        return event_id, dumps(event)
    except (TypeError, ValueError) as error:  # ValueError: an int too long for JSON text
        raise TypeError(
            f"{describe(receiver)} runs in the background, and {type(instance).__name__}'s "
            f"event cannot be encoded: {error}"
        ) from error


def _reference(instance: Any) -> dict[str, Any]:
    mapper: Mapper[Any] = inspect(type(instance))
    primary_key = mapper.primary_key_from_instance(instance)
    pk = []
    for column, value in zip(mapper.primary_key, primary_key, strict=True):
        try:
            pk.append(encode_value(value, declared_enum(column.type)))
        except TypeError as error:
            raise TypeError(f"primary key {column.key}: {error}") from error
    return {"model": model_name(mapper.class_), "pk": pk}


def _column_values(instance: Any) -> dict[str, Any]:
    state = inspect(instance)
    return {
        prop.key: _encoded(state.mapper, prop.key, state.dict.get(prop.key))
        for prop in state.mapper.column_attrs
    }


def _encoded(mapper: Mapper[Any], key: str, value: Any) -> Any:
    try:
        return encode_value(value, _enum_of(mapper.column_attrs[key]))
    except TypeError as error:
        raise TypeError(f"{key}: {error}") from error


def model_name(cls: type) -> str:
    """How an event names its model: the class's module and qualified name."""
    return f"{cls.__module__}:{cls.__qualname__}"


# -- in the worker -------------------------------------------------------------------------------


def arguments_in_worker(
    args: tuple[Any, ...],
    message: dict[str, Any],
    task_id: str | None,
    session: Session,
    signal: Signal,
    sender: Any,
) -> dict[str, Any] | None:
    """The keyword arguments of the receiver of ``signal`` (connected for
    ``sender``) in the worker, from the task's arguments and id; ``None`` when a
    saved row is gone by then (deleted before the worker ran).

    :raises RefusedEvent: the message is not an event of ``signal`` for
        ``sender``, published under its own id, naming what is wrong and what it
        named.
    """
    if args or message.keys() != {"event"} or not isinstance(message["event"], str):
        raise RefusedEvent(
            "a background receiver's task takes one argument, event=<JSON text>, "
            f"not {len(args)} positional and {sorted(message)!r:.200}"
        )
    try:
        event = loads(message["event"])
        reader = _Reader(event)
        event_id = reader.get("event_id", str)
        if event_id != task_id:
            raise RefusedEvent(f"the event {event_id!r:.100} came as task {task_id!r}")
        return _arguments(reader, event_id, session, signal, sender)
    except RecursionError:
        raise RefusedEvent("the event is nested deeper than Python's recursion limit") from None
    except ValueError as error:  # RefusedEvent is one
        if isinstance(error, RefusedEvent):
            raise
        raise RefusedEvent(f"the event is not JSON: {error}") from error


# W3C Trace Context's traceparent: version, trace id, parent span id, flags.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def event_traceparent(message: dict[str, Any]) -> str | None:
    """The ``traceparent`` an event was written under, if it holds a well-formed
    one. It only ever makes a link between spans: a forged one links to a span
    that is not the writer's, and nothing else."""
    try:
        event = loads(message["event"])
    except (KeyError, TypeError, ValueError, RecursionError):
        return None  # the task refuses such a message itself
    traceparent = event.get("traceparent") if isinstance(event, dict) else None
    if isinstance(traceparent, str) and _TRACEPARENT.fullmatch(traceparent):
        return traceparent
    return None


def _arguments(
    reader: _Reader, event_id: str, session: Session, signal: Signal, sender: Any
) -> dict[str, Any] | None:
    signal_name = reader.get("signal", str)
    if signal_name != BACKGROUND_SIGNALS[signal]:
        raise RefusedEvent(f"the event is a {signal_name!r}, for a receiver of {signal!r}")
    mapper = _mapper_of(reader.get("model", str), sender)
    common = {
        "signal": signal,
        "sender": mapper.class_,
        "using": session.get_bind(mapper),
        "session": session,
        "event_id": event_id,
    }
    if signal is post_save:
        # The whole event is checked before its row is looked for.
        primary_key = _primary_key(mapper, reader.get("pk", list))
        update_fields = reader.get("update_fields", list, nullable=True)
        changes = reader.get("changes", dict)
        _check_columns(mapper, [*(update_fields or ()), *changes])
        arguments = {
            **common,
            "created": reader.get("created", bool),
            "raw": reader.get("raw", bool),
            "update_fields": None if update_fields is None else frozenset(update_fields),
            "changes": {
                key: _decoded_change(mapper, key, change) for key, change in changes.items()
            },
        }
        try:
            instance = session.get(mapper.class_, primary_key)
        except (DataError, OverflowError) as error:  # of the right type, yet out of range
            raise RefusedEvent(f"the database refused the primary key: {error}") from error
        return None if instance is None else {**arguments, "instance": instance}
    instance = _detached_copy(mapper, reader.get("values", dict))
    origin: Any = reader.get("origin", (str, dict), nullable=True)
    if origin == "instance":
        origin = instance
    elif isinstance(origin, dict):
        origin_reader = _Reader(origin, "origin")
        origin_mapper = _mapper_of(origin_reader.get("model", str), None)
        origin = _detached_copy(origin_mapper, origin_reader.get("values", dict))
    elif origin is not None:
        raise RefusedEvent(f"the event's origin is {origin!r}")
    return {**common, "instance": instance, "origin": origin}


class _Reader:
    """The fields of an event (or of a part of it), each checked for its type."""

    def __init__(self, document: Any, where: str = "event") -> None:
        if not isinstance(document, dict):
            raise RefusedEvent(f"the {where} is not a JSON object: {document!r:.200}")
        self.document = document
        self.where = where

    def get(self, key: str, kind: type | tuple[type, ...], *, nullable: bool = False) -> Any:
        if key not in self.document:
            raise RefusedEvent(f"the {self.where} has no {key!r}")
        value = self.document[key]
        if value is None and nullable:
            return None
        if not isinstance(value, kind):
            raise RefusedEvent(f"the {self.where}'s {key!r} is {value!r:.200}")
        return value


def _mapper_of(name: str, sender: Any) -> Mapper[Any]:
    """The mapper of the class an event names: the receiver's sender, or, for a
    receiver of any sender, the one class of that name mapped in this process."""
    if sender is not None:
        if name != model_name(sender):
            raise RefusedEvent(
                f"the event names {name!r}, and the receiver is connected for "
                f"{model_name(sender)!r}"
            )
        return inspect(sender)  # type: ignore[no-any-return]
    found = [mapper for mapper in existing_mappers() if model_name(mapper.class_) == name]
    if len(found) != 1:
        raise RefusedEvent(
            f"the event names {name!r}, and {len(found)} classes of that name are mapped "
            "in this process (a worker must import the models of its receivers' events)"
        )
    return found[0]


def _primary_key(mapper: Mapper[Any], data: list[Any]) -> tuple[Any, ...]:
    """The key, each value of the type its column declares: a key the database
    would refuse for its type is refused here, before any SQL."""
    if len(data) != len(mapper.primary_key):
        raise RefusedEvent(f"the event's primary key {data!r:.200} does not fit {mapper}")
    key = []
    for column, item in zip(mapper.primary_key, data, strict=True):
        value = _decoded(f"the primary key {column.key}", item, declared_enum(column.type))
        try:
            expected: Any = column.type.python_type
        except NotImplementedError:
            expected = object
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise RefusedEvent(f"the primary key {column.key} is {value!r:.200}")
        key.append(value)
    return tuple(key)


def _check_columns(mapper: Mapper[Any], keys: Iterable[Any]) -> None:
    unknown = [key for key in keys if not isinstance(key, str) or key not in mapper.column_attrs]
    if unknown:
        raise RefusedEvent(f"the event names {unknown!r:.200}, which {mapper} has no column for")


def _decoded_change(mapper: Mapper[Any], key: str, change: Any) -> tuple[Any, Any]:
    if not isinstance(change, list) or len(change) != 2:
        raise RefusedEvent(f"the change of {key!r} is not [old, new]: {change!r:.200}")
    enum_class = _enum_of(mapper.column_attrs[key])
    old, new = (_decoded(f"the change of {key!r}", item, enum_class) for item in change)
    return old, new


def _detached_copy(mapper: Mapper[Any], values: dict[str, Any]) -> Any:
    """The deleted row as an instance that belongs to no session, as it would
    after ``session.expunge()``: its columns readable, nothing loaded lazily."""
    _check_columns(mapper, values)
    instance = mapper.class_manager.new_instance()
    for key, data in values.items():
        value = _decoded(f"the value of {key!r}", data, _enum_of(mapper.column_attrs[key]))
        set_committed_value(instance, key, value)
    make_transient_to_detached(instance)
    return instance


def _decoded(what: str, data: Any, enum_class: EnumClass | None) -> Any:
    try:
        return decode_value(data, enum_class)
    except ValueError as error:
        raise RefusedEvent(f"{what}: {error}") from error


def _enum_of(prop: ColumnProperty[Any]) -> EnumClass | None:
    return declared_enum(prop.columns[0].type)
