"""Column values as JSON, and back, in an encoding that user data cannot forge.

A background receiver's event carries the values of the user's columns: a JSON
column may hold any dict a user typed, including one shaped like an encoding's
envelope. So the rule that makes a value come back as a type other than JSON's
own must be one that no value can trigger by its content:

- A JSON object in the encoding is the user's dict, unless it carries the key
  ``TAG``; and every dict of the user's that carries ``TAG`` (or has keys that
  are not strings) is itself sent tagged, as a list of its items. So a tagged
  object was made by this module, never by data.
- The tags are a closed set, each decoded by a fixed constructor of a value
  type (``Decimal``, ``datetime``, ...): data picks among them as JSON picks
  between a list and a string, and can name nothing else.
- An enum member is restored as a member of the enum class that the column
  declares (``sa.Enum(MyEnum)``), looked up by its name in that class: the
  event never names a class.

This is not kombu's JSON (Celery's default serializer), whose
``{"__type__": ..., "__value__": ...}`` objects are decoded wherever they
appear, user data included; the event travels through Celery as one string.
"""

from __future__ import annotations

import base64
import enum
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.types import TypeEngine

__all__: list[str] = []

TAG = "__sa_signals__"

EnumClass = type[enum.Enum]


def dumps(document: Any) -> str:
    """JSON text of a document whose values went through ``encode_value``."""
    return json.dumps(document, separators=(",", ":"))


def loads(text: str) -> Any:
    """A document from JSON text: JSON's own types only, nothing decoded."""
    return json.loads(text)


def declared_enum(column_type: TypeEngine[Any]) -> EnumClass | None:
    """The enum class a column declares (``sa.Enum(MyEnum)``, an ``ARRAY`` of
    one, or a type decorating either that says so in its ``python_type``), if
    any: the only class an enum value can come back as."""
    item_type = getattr(column_type, "item_type", None)  # ARRAY
    if isinstance(item_type, TypeEngine):
        return declared_enum(item_type)
    try:
        python_type = column_type.python_type
    except NotImplementedError:  # a type that does not say
        return None
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return python_type
    return None


def encode_value(value: Any, enum_class: EnumClass | None = None) -> Any:
    """``value`` as JSON data; ``enum_class`` is what its column declares (for
    the value, or for the items of an array).

    :raises TypeError: a value of a type this encoding has no place for (a set,
        an arbitrary object, an enum member its column does not declare), or
        nested deeper than Python's recursion limit, naming it.
    """
    try:
        return _encode(value, enum_class)
    except RecursionError:
        raise TypeError("a value nested deeper than Python's recursion limit") from None


def _encode(value: Any, enum_class: EnumClass | None) -> Any:
    # Loops rather than comprehensions: one frame per level of nesting, as
    # json.dumps takes, so that whatever a JSON column holds can travel.
    if value is None or type(value) in _JSON_SCALARS:
        return value
    if enum_class is not None and isinstance(value, enum_class):
        return _tagged("enum", value.name)
    for value_type, (tag, encode) in _ENCODERS.items():
        if isinstance(value, value_type):
            return _tagged(tag, encode(value))
    if isinstance(value, dict):
        if TAG in value or not all(type(key) is str for key in value):
            # The user's dict could be mistaken for a tag, or JSON would turn
            # its keys into strings: its items, tagged.
            pairs = []
            for key, item in value.items():
                pairs.append([_encode(key, None), _encode(item, None)])
            return _tagged("dict", pairs)
        encoded = {}
        for key, item in value.items():
            encoded[key] = _encode(item, None)
        return encoded
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            items.append(_encode(item, enum_class))  # an ARRAY's items
        return items if isinstance(value, list) else _tagged("tuple", items)
    for scalar, plain in _PLAIN_SCALARS.items():
        # A subclass of str, int or float (a str- or int-based enum in a column
        # that declares no enum, say) travels as the plain value it equals,
        # which is also what a JSON column stores.
        if isinstance(value, scalar):
            return plain(value)
    hint = (
        " (declare its class on the column: sa.Enum(...), or a type whose python_type says it)"
        if isinstance(value, enum.Enum)
        else ""
    )
    raise TypeError(f"a {type(value).__name__} ({value!r:.200}) has no JSON encoding here{hint}")


def decode_value(data: Any, enum_class: EnumClass | None = None) -> Any:
    """The value ``encode_value`` was given, from ``data`` (parsed JSON).

    :raises ValueError: ``data`` was not made by ``encode_value`` (an unknown or
        malformed tag, an enum member its column does not declare, nesting
        deeper than Python's recursion limit).
    """
    try:
        return _decode(data, enum_class)
    except RecursionError:
        raise ValueError("a value nested deeper than Python's recursion limit") from None


def _decode(data: Any, enum_class: EnumClass | None) -> Any:
    if isinstance(data, list):
        items = []
        for item in data:
            items.append(_decode(item, enum_class))
        return items
    if not isinstance(data, dict):
        return data
    if TAG not in data:
        decoded = {}
        for key, item in data.items():
            decoded[key] = _decode(item, None)
        return decoded
    if data.keys() != {TAG, "value"}:
        raise ValueError(f"a malformed tagged value: {_shown(data)}")
    tag, content = data[TAG], data["value"]
    try:
        if tag == "enum":
            return _enum_member(content, enum_class)
        if tag == "dict":
            pairs = {}
            for key, item in _pairs(content):
                pairs[_decode(key, None)] = _decode(item, None)
            return pairs
        if tag == "tuple":
            return tuple(_decode(_list(content), enum_class))
        decode = _DECODERS.get(tag) if isinstance(tag, str) else None
        if decode is None:
            raise ValueError(f"an unknown tag {tag!r}")
        return decode(content)
    except (TypeError, ValueError, KeyError, ArithmeticError) as error:
        raise ValueError(f"{_shown(data)} cannot be decoded: {error}") from error


def _tagged(tag: str, content: Any) -> dict[str, Any]:
    return {TAG: tag, "value": content}


def _enum_member(name: Any, enum_class: EnumClass | None) -> enum.Enum:
    if enum_class is None:
        raise ValueError("an enum member, for a column that declares no enum class")
    member = enum_class.__members__.get(_str(name))
    if member is None:
        raise ValueError(f"{enum_class.__qualname__} has no member {name!r}")
    return member


def _pairs(content: Any) -> list[tuple[Any, Any]]:
    pairs = _list(content)
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise ValueError("a dict's items must be [key, value] pairs")
    return [(key, item) for key, item in pairs]


def _list(content: Any) -> list[Any]:
    if not isinstance(content, list):
        raise TypeError(f"expected a list, not {type(content).__name__}")
    return content


def _str(content: Any) -> str:
    if not isinstance(content, str):
        raise TypeError(f"expected a string, not {type(content).__name__}")
    return content


def _with_zone(text: str, value: datetime | time) -> list[Any]:
    """A datetime or time as its ISO text (which keeps a fixed UTC offset), its
    ``fold``, and the key of its IANA zone, if it has one: the offset alone
    would answer differently across a change of daylight saving time."""
    zone = value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None
    return [text, value.fold, zone]


def _zoned(parse: Callable[[str], Any], content: Any) -> Any:
    text, fold, zone = _list(content)
    if fold not in (0, 1) or type(fold) is not int:
        raise ValueError(f"a fold of {fold!r}")
    value = parse(_str(text)).replace(fold=fold)
    # ZoneInfo reads the named zone from the time zone database: data, never code.
    return value if zone is None else value.replace(tzinfo=ZoneInfo(_str(zone)))


def _timedelta(content: Any) -> timedelta:
    days, seconds, microseconds = _list(content)
    if not all(type(part) is int for part in (days, seconds, microseconds)):
        raise TypeError("a timedelta is three integers")
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _shown(data: Any) -> str:
    text = json.dumps(data)
    return text if len(text) <= 200 else f"{text[:200]}..."


_JSON_SCALARS: tuple[type, ...] = (str, int, float, bool)
_PLAIN_SCALARS: dict[type, Callable[[Any], Any]] = {
    str: str.__str__,
    int: int.__int__,
    float: float.__float__,
}

# The types this encoding restores, in the order they are tried (datetime is a
# date). Each tag is decoded by a value type's own constructor, and by nothing else.
_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    datetime: ("datetime", lambda d: _with_zone(d.isoformat(), d)),
    date: ("date", date.isoformat),
    time: ("time", lambda t: _with_zone(t.isoformat(), t)),
    timedelta: ("timedelta", lambda d: [d.days, d.seconds, d.microseconds]),
    Decimal: ("decimal", str),
    uuid.UUID: ("uuid", lambda u: u.hex),
    bytes: ("bytes", lambda b: base64.b64encode(b).decode("ascii")),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": lambda c: _zoned(datetime.fromisoformat, c),
    "date": lambda s: date.fromisoformat(_str(s)),
    "time": lambda c: _zoned(time.fromisoformat, c),
    "timedelta": _timedelta,
    "decimal": lambda s: Decimal(_str(s)),
    "uuid": lambda s: uuid.UUID(hex=_str(s)),
    "bytes": lambda s: base64.b64decode(_str(s), validate=True),
}
