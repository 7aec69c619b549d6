"""The encoding of a background event's values: every value comes back equal
and of the same type, whatever it contains; a JSON object is read as a type
only where the encoding itself wrote one, and an enum only as a member of the
class its column declares."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sa_signals.celery.encoding import TAG, decode_value, dumps, encode_value, loads
from tests.models import Channel, Priority


def travelled(value: Any, enum_class: type[enum.Enum] | None = None) -> Any:
    return decode_value(loads(dumps(encode_value(value, enum_class))), enum_class)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True is not
    enough), datetimes in the same zone and fold."""
    if type(a) is not type(b):
        return False
    if isinstance(a, datetime | time):
        return a == b and (a.tzinfo, a.fold) == (b.tzinfo, b.fold)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# Strings users type that look like what an encoding or an import would read.
LOOKALIKES = st.sampled_from(
    [TAG, "value", "enum", "dict", "tuple", "__type__", "__value__", "class", "os:system"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    LOOKALIKES,
    st.decimals(allow_nan=False),
    st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
    st.dates(),
    st.times(timezones=st.none() | st.just(UTC) | st.timezones()),
    st.timedeltas(),
    st.uuids(),
    st.binary(max_size=8),
)
KEYS = st.one_of(st.text(max_size=8), LOOKALIKES)
HASHABLE_KEYS = st.one_of(KEYS, st.integers(), st.tuples(st.integers(), st.text(max_size=3)))
JSON_DATA = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), LOOKALIKES),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(HASHABLE_KEYS, children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_DATA)
def test_what_a_json_column_holds_comes_back_as_it_was(value: Any) -> None:
    assert same(travelled(value), value)


@given(ANY_VALUE)
def test_every_value_type_the_encoding_knows_comes_back_as_itself(value: Any) -> None:
    assert same(travelled(value), value)


def test_a_zoned_datetime_keeps_its_zone_and_its_fold() -> None:
    new_york = ZoneInfo("America/New_York")
    # 01:30 happens twice on that night: fold tells which.
    for fold in (0, 1):
        when = datetime(2021, 11, 7, 1, 30, fold=fold, tzinfo=new_york)
        assert same(travelled(when), when)
        assert travelled(when).utcoffset() == when.utcoffset()


def test_values_nested_as_deep_as_json_allows_travel() -> None:
    deep: Any = "bottom"
    for _ in range(400):  # 800 levels, within what json.dumps itself can write
        deep = {"next": [deep]}
    assert travelled(deep) == deep
    with pytest.raises(TypeError, match="nested deeper than Python's recursion limit"):
        encode_value(_nested(100_000))


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_an_enum_member_comes_back_as_a_member_of_the_class_its_column_declares() -> None:
    assert travelled(Priority.HIGH, Priority) is Priority.HIGH
    assert travelled(Channel.EMAIL, Channel) is Channel.EMAIL
    # An ARRAY of an enum declares the class of its items.
    assert same(
        travelled([Priority.HIGH, (Priority.LOW,)], Priority), [Priority.HIGH, (Priority.LOW,)]
    )
    # Where no column declares it, a str- or int-based member is the value it equals.
    assert same(travelled([Priority.HIGH, Channel.EMAIL]), [2, "email"])


def test_an_enum_member_whose_class_no_column_declares_is_refused_at_once() -> None:
    class Plain(enum.Enum):
        ONE = object()

    with pytest.raises(TypeError, match=r"a Plain \(<.*ONE.*>\) has no JSON encoding"):
        encode_value(Plain.ONE)


def test_values_of_other_types_are_refused_at_once() -> None:
    with pytest.raises(TypeError, match=r"a set \(\{1\}\) has no JSON encoding"):
        encode_value({"tags": {1}})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({TAG: "enum", "value": "HIGH"}, "for a column that declares no enum class"),
        ({TAG: "import", "value": "os:system"}, "an unknown tag 'import'"),
        ({TAG: "decimal", "value": "1", "class": "x"}, "a malformed tagged value"),
        ({TAG: "timedelta", "value": [1, 2]}, "cannot be decoded"),
        ({TAG: "dict", "value": [[[1], 2]]}, "cannot be decoded"),
        ({TAG: "bytes", "value": "not base64!"}, "cannot be decoded"),
    ],
)
def test_a_tag_the_encoding_did_not_write_is_refused(data: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decode_value(data)


def test_a_member_name_the_declared_class_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="Priority has no member '__class__'"):
        decode_value({TAG: "enum", "value": "__class__"}, Priority)
    assert decode_value({TAG: "enum", "value": "LOW"}, Priority) is Priority.LOW
