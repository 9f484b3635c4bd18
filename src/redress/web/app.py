"""The app factory: ``create_app(settings)`` builds the whole web app.

The lifespan migrates the database, builds the pipeline (engine, stores,
services, queue, rate limiter) and yields it as a typed :class:`AppState`;
routes reach it through :func:`app_state`. Nothing is global: two apps built
from two settings objects share nothing.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from redress import __version__
from redress.config import Settings
from redress.pipeline.container import (
    PipelineContainer,
    PipelineParts,
    build_pipeline,
    settle_heap,
)
from redress.store.migrate import upgrade
from redress.web.errors import install_error_handlers
from redress.web.limits import BodyLimitMiddleware
from redress.web.metrics import ApiMetrics, MetricsMiddleware

STATE_KEY = "redress"


@dataclass(frozen=True)
class AppState:
    """What the lifespan builds and every request can reach."""

    settings: Settings
    pipeline: PipelineContainer
    metrics: ApiMetrics


def app_state(request: Request) -> AppState:
    """The state of the app serving ``request``."""
    state: AppState = getattr(request.app.state, STATE_KEY)
    return state


def _metrics_of(app: Any) -> ApiMetrics | None:
    state = getattr(getattr(app, "state", None), STATE_KEY, None)
    return state.metrics if isinstance(state, AppState) else None


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document: FastAPI's, plus the request bodies routes read themselves,
    with every 422 described by the one error envelope."""
    from fastapi.openapi.utils import get_openapi
    from pydantic.json_schema import models_json_schema

    from redress.web.schemas import BatchIn, ScanHashesIn

    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema(
        [(ScanHashesIn, "validation"), (BatchIn, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    components.update(defs.get("$defs", {}))
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None:
                response["content"] = {"application/json": {"schema": envelope}}
                response["description"] = "validation_error"
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def serving_app() -> FastAPI:
    """The app of one of several `redress serve` processes (uvicorn's factory): settings
    from the environment; the database was migrated once, before the processes began."""
    return create_app(Settings(), migrate=False, settle=True)


def create_app(
    settings: Settings,
    parts: PipelineParts | None = None,
    *,
    migrate: bool = True,
    settle: bool = False,
) -> FastAPI:
    """Build the Redress web app for ``settings`` (``parts`` replaces collaborators,
    e.g. a classifier or connector actioners). ``settle``: the app is its process's
    for good (`redress serve`), so the heap is settled once it has started
    (:func:`~redress.pipeline.container.settle_heap`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await run_in_threadpool(upgrade, settings.effective_database_url)
        pipeline = await run_in_threadpool(build_pipeline, settings, parts)
        metrics = ApiMetrics(pipeline.sessions, pipeline.queue.depth, settings.queue_size)
        pipeline.on_processed.append(metrics.observe_processed)
        # On this app instance (not a global); reachable from any ASGI transport.
        setattr(app.state, STATE_KEY, AppState(settings, pipeline, metrics))
        if settle:
            settle_heap()
        gc.callbacks.append(metrics.collection_pauses)
        try:
            yield
        finally:
            gc.callbacks.remove(metrics.collection_pauses)
            await run_in_threadpool(pipeline.close)
            delattr(app.state, STATE_KEY)

    app = FastAPI(
        title="Redress API",
        version=__version__,
        summary="Scan media and hashes against victims' and moderators' hash banks.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    from redress.web import api

    app.include_router(api.router)
    from redress.web import portal

    portal.install(app, settings)
    from redress.web import notice

    notice.install(app)
    from redress.web import console

    app.include_router(console.router)
    app.mount("/review/static", console.static_files(), name="review-static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=_metrics_of)
    return app
