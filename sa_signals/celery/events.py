"""What a ``post_save`` or ``post_delete`` becomes on its way to a worker, and
what the worker's receiver gets back.

An instance cannot travel: it belongs to a session in another process. It
travels as its model (``"package.module:Class"``) and primary key, and the worker
loads it again. A deleted row cannot be loaded, so a ``post_delete`` event carries
the row's column values, and the worker's receiver gets a detached copy built
from them. ``created``, ``update_fields`` and ``changes`` travel as they are.

Values are encoded with kombu's JSON, the encoding Celery itself uses: dates,
times, decimals, UUIDs and bytes come back as the same types; enums and
``timedelta`` travel in an envelope of sa-signals' own and come back too. A
tuple comes back as a list.
"""

from __future__ import annotations

import enum
import importlib
import uuid
from datetime import timedelta
from typing import Any

from kombu.utils.json import dumps
from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from sa_signals.dispatch import Signal, describe
from sa_signals.signals import post_delete, post_save

__all__ = ["BACKGROUND_SIGNALS", "arguments_in_worker", "encode", "encoded_event"]

# The signals whose receivers can run in the background: both are sent once the
# row is written, with a primary key to find it by (pre_save's new instance has
# none yet).
BACKGROUND_SIGNALS: dict[Signal, str] = {post_save: "post_save", post_delete: "post_delete"}
_SIGNALS_BY_NAME = {name: signal for signal, name in BACKGROUND_SIGNALS.items()}


def encoded_event(signal: Signal, named: dict[str, Any], receiver: Any) -> tuple[str, str]:
    """The id and the JSON text of one send of ``signal``'s event.

    :raises TypeError: a value kombu's JSON cannot encode (a custom type in
        ``changes``, say), naming the receiver and the model.
    """
    instance = named["instance"]
    event_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "event_id": event_id,
        "signal": BACKGROUND_SIGNALS[signal],
        **_reference(instance),
    }
    if signal is post_save:
        event["created"] = named["created"]
        event["raw"] = named["raw"]
        update_fields = named["update_fields"]
        event["update_fields"] = None if update_fields is None else sorted(update_fields)
        event["changes"] = {
            key: [_portable(old), _portable(new)] for key, (old, new) in named["changes"].items()
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
    try:
        return event_id, encode(event)
    except TypeError as error:
        raise TypeError(
            f"{describe(receiver)} runs in the background, and {type(instance).__name__}'s "
            f"event cannot be encoded as JSON: {error}"
        ) from error


def encode(value: Any) -> str:
    """``value`` in kombu's JSON, as the outbox stores it."""
    return dumps(value)


def arguments_in_worker(event: dict[str, Any], session: Session) -> dict[str, Any] | None:
    """The keyword arguments of the receiver in the worker, or ``None`` when a
    saved row is gone by then (deleted before the worker ran)."""
    model = _model(event["model"])
    mapper: Mapper[Any] = inspect(model)
    key = tuple(_restored(value) for value in event["pk"])
    common = {
        "signal": _SIGNALS_BY_NAME[event["signal"]],
        "sender": model,
        "using": session.get_bind(mapper),
        "session": session,
        "event_id": event["event_id"],
    }
    if event["signal"] == "post_save":
        instance = session.get(model, key if len(key) > 1 else key[0])
        if instance is None:
            return None
        update_fields = event["update_fields"]
        return {
            **common,
            "instance": instance,
            "created": event["created"],
            "raw": event["raw"],
            "update_fields": None if update_fields is None else frozenset(update_fields),
            "changes": {
                name: (_restored(old), _restored(new))
                for name, (old, new) in event["changes"].items()
            },
        }
    instance = _detached_copy(model, event["values"])
    origin = event["origin"]
    if origin == "instance":
        origin = instance
    elif origin is not None:
        origin = _detached_copy(_model(origin["model"]), origin["values"])
    return {**common, "instance": instance, "origin": origin}


def _reference(instance: Any) -> dict[str, Any]:
    cls = type(instance)
    mapper: Mapper[Any] = inspect(cls)
    return {
        "model": _path(cls),
        "pk": [_portable(value) for value in mapper.primary_key_from_instance(instance)],
    }


def _column_values(instance: Any) -> dict[str, Any]:
    state = inspect(instance)
    return {
        attribute.key: _portable(state.dict.get(attribute.key))
        for attribute in state.mapper.column_attrs
    }


# Column values kombu's JSON has no type for, in an envelope of sa-signals' own.
_ENVELOPE = "__sa_signals__"


def _portable(value: Any) -> Any:
    if isinstance(value, enum.Enum):  # before str: a str-based Enum would lose its class
        return {_ENVELOPE: "enum", "class": _path(type(value)), "value": _portable(value.value)}
    if isinstance(value, timedelta):
        return {_ENVELOPE: "timedelta", "seconds": value.total_seconds()}
    return value


def _restored(value: Any) -> Any:
    if not isinstance(value, dict) or _ENVELOPE not in value:
        return value
    if value[_ENVELOPE] == "enum":
        return _model(value["class"])(_restored(value["value"]))
    return timedelta(seconds=value["seconds"])


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _model(path: str) -> type:
    module, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module)
    for name in qualname.split("."):
        target = getattr(target, name)
    return target  # type: ignore[no-any-return]


def _detached_copy(model: type, values: dict[str, Any]) -> Any:
    """The deleted row as an instance that belongs to no session, as it would
    after ``session.expunge()``: its columns readable, nothing loaded lazily."""
    mapper: Mapper[Any] = inspect(model)
    instance = mapper.class_manager.new_instance()
    for key, value in values.items():
        set_committed_value(instance, key, _restored(value))
    make_transient_to_detached(instance)
    return instance
