"""The mapped classes the test suite works with: one schema, created once per
database, emptied after every test."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    PickleType,
    String,
    Table,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sa_signals.auth import UserMixin
from sa_signals.celery import outbox_table
from sa_signals.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class Note(Base):
    """A class no test connects receivers for."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    orders: Mapped[list[Order]] = relationship(back_populates="customer")
    profile: Mapped[Profile | None] = relationship(back_populates="customer")


class Profile(Base):
    __tablename__ = "profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    bio: Mapped[str] = mapped_column(String(200), default="")
    customer: Mapped[Customer] = relationship(back_populates="profile")


order_tag = Table(
    "order_tag",
    Base.metadata,
    Column("order_id", ForeignKey("orders.id"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id"), primary_key=True),
)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="new")
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    customer: Mapped[Customer | None] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=order_tag, back_populates="orders")


class Tag(Base):
    """The other side of Order.tags: a back_populates pair, forward on Order's
    side since its join uses the association table's first column."""

    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    orders: Mapped[list[Order]] = relationship(secondary=order_tag, back_populates="tags")


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[int] = mapped_column(default=1)
    order: Mapped[Order] = relationship(back_populates="lines")


class Shipment(Base):
    """One-to-many without a backref: the child's foreign key is written by the
    flush alone when it moves to another parent's collection."""

    __tablename__ = "shipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier: Mapped[str] = mapped_column(String(50))
    parcels: Mapped[list[Parcel]] = relationship(cascade="all, delete-orphan")


class Parcel(Base):
    __tablename__ = "parcel"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id"))
    weight: Mapped[int] = mapped_column(default=1)


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(200), default="")


class Employee(Base):
    """Joined-table inheritance."""

    __tablename__ = "employee"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "employee",
    }


class Manager(Employee):
    __tablename__ = "manager"

    id: Mapped[int] = mapped_column(ForeignKey("employee.id"), primary_key=True)
    budget: Mapped[int] = mapped_column(default=0)
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "manager"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("budget", 100)
        super().__init__(**kwargs)  # Employee's constructor: one instance, not two


class Vehicle(Base):
    """Single-table inheritance: one table, rows of several classes."""

    __tablename__ = "vehicle"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "vehicle",
    }


class Truck(Vehicle):
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "truck"}


class Document(Base):
    """Optimistic locking: every UPDATE also writes the version counter."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    edited_at: Mapped[datetime | None] = mapped_column(DateTime, onupdate=func.now())
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class Widget(Base):
    """A many-to-one written by SQLAlchemy's separate post-update statement
    (two tables pointing at each other)."""

    __tablename__ = "widget"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    favorite_id: Mapped[int | None] = mapped_column(ForeignKey("part.id", use_alter=True))
    favorite: Mapped[Part | None] = relationship(foreign_keys=[favorite_id], post_update=True)
    # and a one-to-many written the same way: the children's rows are updated
    parts: Mapped[list[Part]] = relationship(
        foreign_keys="Part.widget_id", post_update=True, overlaps="favorite"
    )


class Part(Base):
    __tablename__ = "part"

    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[int | None] = mapped_column(ForeignKey("widget.id"))


class Record(Base):
    """A version counter the application maintains itself."""

    __tablename__ = "record"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(20))
    revision: Mapped[str] = mapped_column(String(32))
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "version_id_col": revision,
        "version_id_generator": False,
    }


article_label = Table(
    "article_label",
    Base.metadata,
    Column("label_id", ForeignKey("label.id"), primary_key=True),
    Column("article_id", ForeignKey("article.id"), primary_key=True),
)


class Label(Base):
    """Declares ``backref=``: Label's side is forward, Article.labels reverse."""

    __tablename__ = "label"

    id: Mapped[int] = mapped_column(primary_key=True)
    articles: Mapped[list[Article]] = relationship(secondary=article_label, backref="labels")


class Article(Base):
    __tablename__ = "article"

    id: Mapped[int] = mapped_column(primary_key=True)


friendship = Table(
    "friendship",
    Base.metadata,
    Column("befriended_id", ForeignKey("person.id"), primary_key=True),
    Column("friend_id", ForeignKey("person.id"), primary_key=True),
)


class Person(Base):
    """Self-referential many-to-many: ``befriended_by`` joins on the table's first
    column, so it is the forward side, whatever the declaration order."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    friends: Mapped[list[Person]] = relationship(
        secondary=friendship,
        primaryjoin=lambda: Person.id == friendship.c.friend_id,
        secondaryjoin=lambda: Person.id == friendship.c.befriended_id,
        back_populates="befriended_by",
    )
    befriended_by: Mapped[list[Person]] = relationship(
        secondary=friendship,
        primaryjoin=lambda: Person.id == friendship.c.befriended_id,
        secondaryjoin=lambda: Person.id == friendship.c.friend_id,
        back_populates="friends",
    )


# -- the sample auth module (sa_signals.auth) -------------------------------------------


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)


# -- models of background receivers: every kind of primary key, JSON-unfriendly values ----

outbox = outbox_table(Base.metadata)


class InvoiceState(enum.Enum):
    DRAFT = "draft"
    SENT = "sent"


class Invoice(Base):
    """A string primary key, and values JSON has no type for."""

    __tablename__ = "invoice"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    due: Mapped[date]
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reference: Mapped[uuid.UUID | None]
    state: Mapped[InvoiceState] = mapped_column(
        Enum(InvoiceState, native_enum=False, length=20), default=InvoiceState.DRAFT
    )
    terms: Mapped[timedelta | None]
    notes: Mapped[Any] = mapped_column(PickleType, nullable=True)  # anything, JSON or not


class Ticket(Base):
    """A UUID primary key."""

    __tablename__ = "ticket"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(100))


class Stock(Base):
    """A composite primary key."""

    __tablename__ = "stock"

    warehouse: Mapped[str] = mapped_column(String(20), primary_key=True)
    sku: Mapped[str] = mapped_column(String(20), primary_key=True)
    quantity: Mapped[int] = mapped_column(default=0)


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Channel(enum.StrEnum):
    LETTER = "letter"
    EMAIL = "email"


class Submission(Base):
    """Whatever a user typed, in a JSON column, beside an int-based and a
    str-based enum and bytes: the values a background event must bring back
    exactly as they were written."""

    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    form: Mapped[Any] = mapped_column(JSON, nullable=True)
    priority: Mapped[Priority] = mapped_column(
        Enum(Priority, name="submission_priority"), default=Priority.LOW
    )
    channel: Mapped[Channel] = mapped_column(
        Enum(Channel, name="submission_channel"), default=Channel.LETTER
    )
    scan: Mapped[bytes | None] = mapped_column(LargeBinary)
