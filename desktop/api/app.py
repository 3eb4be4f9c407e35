"""The FastAPI application: routes, error handlers and the security middleware, around one `ApiState`.

`ApiState` holds what outlives a request: the configuration, the way to reach the engine and the store
(`Backend`, getters so nothing loads before it is needed), the `ClientGate` (who may call, and the access
log), and the two request lines (chat jobs on the engine executor `Backend.executor`, embeddings on a
thread of their own). `desktop.api.server.ApiServer` builds one, serves `create_app(state)` with uvicorn
and closes it.

Three APIs share the port and the security layer: OpenAI's (`/v1/...`, here), Ollama's (`/api/...`,
desktop/api/ollama.py) and MCP over Streamable HTTP (`/mcp`, desktop/api/mcp_server.py). Ollama's chat and
generate requests become the same chat jobs, so they share the engine executor too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from desktop.api import chat, embeddings, ollama, schemas
from desktop.api.errors import ApiError, QuietErrors
from desktop.api.gate import ClientGate
from desktop.api.queue import ModelWorker
from desktop.api.schemas import ChatCompletionRequest, EmbeddingRequest
from desktop.api.security import DEFAULT_MAX_BODY_BYTES, OLLAMA_PREFIX, SecurityMiddleware, require
from desktop.engine import models

if TYPE_CHECKING:
    from desktop.engine import Engine
    from desktop.engine.executor import Executor
    from storage.store import Store


ALIAS = "hearth"  # always names the model this server runs
EMBEDDING_NAMES = frozenset({embeddings.EMBEDDING_MODEL, "sentence-transformers/all-minilm-l6-v2", ALIAS})


@dataclass(frozen=True)
class ApiConfig:
    model_name: str = models.BUNDLED_NAME  # the chat model this server runs (also answers to "hearth")
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed to call the API (CORS); none by default
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # larger request bodies get 413
    max_tokens_cap: int = 1024  # max_tokens above this is lowered to it
    queue_capacity: int = 4  # chat requests that may wait behind the running one; more get 429
    embed_queue_capacity: int = 4
    mcp: bool = True  # serve MCP at /mcp (needs the store)


@dataclass
class Backend:
    """How the API reaches the rest of Hearth; getters are called on the worker threads only."""

    engine: Callable[[], Engine]
    store: Callable[[], Store] | None = None  # needed for hearth_docs / hearth_save only
    embedder: embeddings.Embedder | None = None  # default: the shared or bundled MiniLM, loaded lazily
    # The engine executor chat jobs run on (`Services.engine_executor`, shared with the window when it hosts
    # the API); None: the API makes its own thread (tests with a bare Engine).
    executor: Executor | None = None


@dataclass
class ApiState:
    config: ApiConfig
    backend: Backend
    gate: ClientGate
    port: int = 0  # the bound port, set by the server before it accepts connections
    chat_worker: ModelWorker = field(init=False)
    embed_worker: ModelWorker = field(init=False)

    def __post_init__(self) -> None:
        self.chat_worker = ModelWorker("chat", self.config.queue_capacity, self.backend.executor)
        self.embed_worker = ModelWorker("embeddings", self.config.embed_queue_capacity)

    def served_names(self) -> set[str]:
        return {ALIAS, self.config.model_name}

    def registered_names(self) -> list[str]:
        return [m.name for m in models.list_models()]

    def embedder(self) -> embeddings.Embedder:
        if self.backend.embedder is None:
            self.backend.embedder = embeddings.default_embedder()
        return self.backend.embedder

    def close(self) -> None:
        self.chat_worker.stop()
        self.embed_worker.stop()


def create_app(state: ApiState) -> Any:
    """The ASGI app: QuietErrors(SecurityMiddleware( [CORS(] FastAPI routes [)] ))."""
    mcp = None
    if state.config.mcp and state.backend.store is not None:
        from desktop.api import mcp_server  # the MCP SDK loads only for a server that offers it

        mcp = mcp_server.for_http(state)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if mcp is not None:
                await stack.enter_async_context(mcp.running())
            yield

    app = FastAPI(title="Hearth local API", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.hearth = state
    _add_error_handlers(app)
    _add_routes(app, state)
    ollama.add_routes(app, state)
    if mcp is not None:
        app.router.routes.append(mcp.route())
    inner: Any = app
    if state.config.allowed_origins:
        inner = CORSMiddleware(
            app,
            allow_origins=list(state.config.allowed_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type"],
        )
    return QuietErrors(
        SecurityMiddleware(
            inner,
            port=lambda: state.port,
            gate=state.gate,
            allowed_origins=state.config.allowed_origins,
            max_body_bytes=state.config.max_body_bytes,
        )
    )


def _add_routes(app: FastAPI, state: ApiState) -> None:
    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = schemas.now()
        names = [ALIAS, *state.registered_names(), embeddings.EMBEDDING_MODEL]
        return {"object": "list", "data": [schemas.model_entry(n, created) for n in dict.fromkeys(names)]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str) -> dict[str, Any]:
        if name not in {ALIAS, embeddings.EMBEDDING_MODEL, *state.registered_names()}:
            raise ApiError(404, f"The model {name!r} does not exist.", "model_not_found", "model")
        return schemas.model_entry(name, schemas.now())

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Any:
        client = require(request, "chat")
        model = chat.check_model(state, req.model)
        turn, params = chat.prepare(state, req, client)
        ticket = chat.submit(state.chat_worker, chat.job(state, req, turn, params))
        if req.stream:
            return chat.stream(req, model, ticket, request)
        return await chat.complete(model, ticket, request)

    @app.post("/v1/embeddings")
    async def create_embeddings(req: EmbeddingRequest, request: Request) -> dict[str, Any]:
        require(request, "embeddings")
        if req.model.lower() not in EMBEDDING_NAMES:
            raise ApiError(404, f"The model {req.model!r} does not exist.", "model_not_found", "model")
        vectors, tokens = await embeddings.run(state, embeddings.inputs_of(req))
        return embeddings.response(vectors, tokens, req.encoding_format, embeddings.EMBEDDING_MODEL)


def _add_error_handlers(app: FastAPI) -> None:
    def shaped(request: Request, error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
        body = error.body(ollama=request.url.path.startswith(OLLAMA_PREFIX))
        return JSONResponse(body, status_code=error.status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return shaped(request, exc, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            error = ApiError(400, "the request body is not valid JSON", "invalid_json")
        else:
            first = errors[0] if errors else {}
            loc = [str(p) for p in first.get("loc", ()) if p != "body"]
            param = ".".join(loc) or None
            # pydantic's `msg` names the expected type, never the submitted value.
            msg = first.get("msg", "invalid value")
            message = f"{param}: {msg}" if param else msg
            error = ApiError(422, message, first.get("type", "invalid_value"), param)
        return shaped(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(exc.status_code)
        message = {404: "no such endpoint", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        error = ApiError(exc.status_code, message, code)
        return shaped(request, error, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this; QuietErrors logs it (type and frames only).
        return shaped(request, ApiError(500, "internal server error (see the server log)", "internal_error"))
