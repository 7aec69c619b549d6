"""The application factory: the engine, a session per request, the routes, and
what a receiver's refusal becomes over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import async_sessionmaker

from examples.fastapi_app import accounts, posts, records
from examples.fastapi_app import tasks as _tasks  # noqa: F401  (connects the background one)
from examples.fastapi_app.database import open_async_engine
from examples.fastapi_app.moderation import Refused
from examples.fastapi_app.receivers import NotYourPosts  # importing it connects the receivers

__all__ = ["create_app"]


def create_app(*, secret_key: str, database: URL | None = None) -> FastAPI:
    """The application, on ``database`` (``DATABASE_URL`` by default).

    :param secret_key: signs the access tokens; keep it secret, and the same
        across the processes that serve the app.
    """
    if not secret_key:
        raise RuntimeError("create_app() needs a secret_key: it signs the access tokens.")
    engine = open_async_engine(database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(title="sa-signals demo blog", lifespan=lifespan)
    app.state.secret_key = secret_key
    app.state.sessions = async_sessionmaker(engine)
    for module in (accounts, posts, records):
        app.include_router(module.router)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(NotYourPosts, _not_yours)
    return app


# A receiver that raises aborts the flush: the request's session rolls back
# (sessions.request_session), and the client is told why.


async def _refused(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, HTTPStatus.UNPROCESSABLE_ENTITY)


async def _not_yours(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status.HTTP_403_FORBIDDEN)
