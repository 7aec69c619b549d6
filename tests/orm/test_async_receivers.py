"""``async def`` receivers: awaited on the session's own event loop under an
AsyncSession, run to completion under a sync Session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sa_signals import post_save, pre_save
from tests.databases import Database, on_every_async_driver
from tests.models import Order


@pytest.fixture
def connect() -> Any:
    connected: list[tuple[Any, Callable[..., Any]]] = []

    def connect(signal: Any, receiver: Callable[..., Any]) -> None:
        signal.connect(receiver, sender=Order, weak=False)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver, sender=Order)


@on_every_async_driver
def test_under_an_async_session_they_run_on_the_sessions_loop(
    engine: Engine, database: Database, connect: Any
) -> None:
    loops = []

    async def stamp(instance: Order, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        loops.append(asyncio.get_running_loop())
        instance.reference = instance.reference + " (checked)"

    connect(pre_save, stamp)

    async def main() -> asyncio.AbstractEventLoop:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                session.add(Order(reference="A-1"))
                await session.commit()
                stored = await session.scalars(select(Order.reference))
                assert stored.all() == ["A-1 (checked)"]
        finally:
            await async_engine.dispose()
        return asyncio.get_running_loop()

    assert loops == [asyncio.run(main())]


def test_under_a_sync_session_they_run_to_completion(session: Session, connect: Any) -> None:
    finished = []

    async def slow(instance: Order, created: bool, **kwargs: Any) -> None:
        await asyncio.sleep(0.01)
        finished.append((instance.id, created))

    connect(post_save, slow)
    order = Order(reference="A-1")
    session.add(order)
    session.flush()
    assert finished == [(order.id, True)]


@on_every_async_driver
def test_a_failing_async_receiver_aborts_the_flush(
    engine: Engine, database: Database, connect: Any
) -> None:
    async def refuse(**kwargs: Any) -> None:
        raise PermissionError("not today")

    connect(post_save, refuse)

    async def main() -> None:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                session.add(Order(reference="A-1"))
                with pytest.raises(PermissionError):
                    await session.commit()
                await session.rollback()
        finally:
            await async_engine.dispose()

    asyncio.run(main())
    with Session(engine) as session:
        assert session.scalars(select(Order)).all() == []
