"""`/v1/chat/completions`: an OpenAI request turned into a `Conversation` turn on the model worker.

The API talks through `desktop.engine.conversation.Conversation`, like the CLI and the window, so grounding in
documents and (opt-in) saving work the same way everywhere. Mapping:
- all `system`/`developer` messages form the system prompt; without one, a neutral assistant prompt, not
  the app's "You are Hearth" persona: API clients bring their own personas (as with OpenAI), and the
  small bundled model answers plain questions worse under the persona;
- the other messages are the history; the last one must be the user's question;
- sampling defaults are the engine's (the model's measured temperature, top_p 0.9), not OpenAI's, so an API
  answer matches what the app would say; `max_tokens` above the server's cap is lowered to it (finish_reason
  "length" tells the client), because editors routinely ask for 4096+ tokens and a refusal would break them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from desktop.api import schemas
from desktop.api.errors import ApiError
from desktop.api.queue import JobFailed, ModelWorker, QueueFull, Ticket, WorkerStopped
from desktop.api.schemas import MAX_STOP_SEQUENCES, ChatCompletionRequest, ChatMessage
from desktop.engine import DEFAULT_MAX_TOKENS, ChatEvent, GenerationStats, Message, SamplingParams, adapters
from desktop.engine.conversation import DEFAULT_SYSTEM_PROMPT, Conversation
from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.api.app import ApiState
    from storage.clients import Client

FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop"}


@dataclass(frozen=True)
class Sources:
    """The passages a grounded answer used (sent after the answer, as `hearth_sources`)."""

    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SetupFailed:
    """The model or the store could not be opened for this request (a server-side problem: 503)."""

    message: str


@dataclass(frozen=True)
class Turn:
    system: str
    history: list[Message]
    question: str


def check_model(state: ApiState, name: str) -> str:
    """The model name to report back; 404 for an unknown name, 400 for a registered but not loaded one."""
    if name in state.served_names():
        return name
    if name in state.registered_names():
        raise ApiError(
            400,
            f"this server runs {state.config.model_name!r}; restart it with `hearth --model {name} serve` "
            f"to use {name!r}",
            "model_not_loaded",
            "model",
        )
    raise ApiError(404, f"The model {name!r} does not exist.", "model_not_found", "model")


def prepare(state: ApiState, req: ChatCompletionRequest, client: Client) -> tuple[Turn, SamplingParams]:
    """Validate everything that can be checked before queueing, scopes included; raise ApiError otherwise."""
    _check_scopes(req, client)
    if req.n != 1:
        raise ApiError(400, "n must be 1: Hearth generates one answer per request", "unsupported_value", "n")
    if req.tools:
        raise ApiError(400, "tools (function calling) are not supported", "unsupported_parameter", "tools")
    if req.hearth_adapter is not None and state.backend.store is None:
        raise ApiError(501, "this server has no store holding adapters", "adapters_unavailable", "hearth_adapter")
    if req.hearth_docs and state.backend.store is None:
        raise ApiError(501, "this server has no store holding documents", "documents_unavailable", "hearth_docs")
    if req.hearth_save and state.backend.store is None:
        raise ApiError(501, "this server has no store to save chats in", "history_unavailable", "hearth_save")
    turn = _turn(req.messages)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > MAX_STOP_SEQUENCES or not all(stop):
        raise ApiError(400, f"stop takes at most {MAX_STOP_SEQUENCES} non-empty strings", "invalid_value", "stop")
    wanted = req.max_completion_tokens or req.max_tokens or DEFAULT_MAX_TOKENS
    defaults = SamplingParams()
    params = SamplingParams(
        max_tokens=min(wanted, state.config.max_tokens_cap),
        temperature=req.temperature,  # None: the model's measured default
        top_p=defaults.top_p if req.top_p is None else req.top_p,
        seed=req.seed,
        stop=stop,
    )
    return turn, params


def _check_scopes(req: ChatCompletionRequest, client: Client) -> None:
    """Grounding reads the documents and saving writes the history: each needs its own scope."""
    for field_name, wanted, scope in (
        ("hearth_docs", req.hearth_docs, "documents"),
        ("hearth_save", req.hearth_save, "chats"),
    ):
        if wanted and not client.allows(scope):
            raise ApiError(
                403, f"the client {client.name!r} lacks the {scope!r} scope", "insufficient_scope", field_name
            )
    if client.base_model_only and req.hearth_adapter not in (None, "off"):
        raise ApiError(403, "tokenless requests get the base model only", "insufficient_scope", "model")


def _turn(messages: list[ChatMessage]) -> Turn:
    system: list[str] = []
    turns: list[Message] = []
    for i, m in enumerate(messages):
        text = _text(m, i)
        if m.role in ("system", "developer"):
            system.append(text)
        elif m.role in ("user", "assistant"):
            turns.append(Message(m.role, text))
        else:
            raise ApiError(
                400,
                f"messages[{i}]: role {m.role!r} is not supported",
                "unsupported_value",
                f"messages[{i}].role",
            )
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "the last message must be the user's", "invalid_value", "messages")
    return Turn("\n\n".join(system) or DEFAULT_SYSTEM_PROMPT, turns[:-1], turns[-1].content)


def _text(m: ChatMessage, i: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for part in m.content:
        if part.type != "text" or part.text is None:
            raise ApiError(
                400,
                f"messages[{i}]: only text content is supported",
                "unsupported_content",
                f"messages[{i}].content",
            )
        parts.append(part.text)
    return "\n".join(parts)


def job(state: ApiState, req: ChatCompletionRequest, turn: Turn, params: SamplingParams) -> Callable[[], Iterator]:
    """The work the model worker runs on the engine executor: one Conversation turn, yielding ChatEvents
    (then Sources). A `hearth_adapter` is an argument of the turn's one locked `Engine.chat` call, so no
    other reply (the window's) can run on it and the user's active adapter is back when the turn ends."""
    backend = state.backend

    def work() -> Iterator[ChatEvent | Sources | SetupFailed]:
        try:
            engine = backend.engine()
            needs_store = req.hearth_docs or req.hearth_save or req.hearth_adapter is not None
            store = backend.store() if needs_store and backend.store is not None else None
        except KnownError as exc:
            yield SetupFailed(str(exc))
            return
        conversation = Conversation(
            engine, store, system_prompt=turn.system, save=req.hearth_save, use_docs=req.hearth_docs
        )
        conversation.history = list(turn.history)
        try:
            adapter = adapters.choice(store, req.hearth_adapter) if req.hearth_adapter is not None else None
            yield from conversation.stream(turn.question, params, adapter=adapter)
        except KnownError as exc:  # unknown adapter, grounding failures; the engine reports its own as events
            yield ChatEvent("error", str(exc))
            return
        if req.hearth_docs:
            yield Sources(conversation.last_sources)

    return work


def submit(
    worker: ModelWorker,
    work: Callable[[], Iterator],
    busy: str = "the model is busy with other requests; retry after the time in the Retry-After header",
) -> Ticket:
    """Queue work on a worker; a full queue is a 429 with Retry-After, a stopping server a 503."""
    try:
        return worker.submit(work)
    except QueueFull as exc:
        raise ApiError(429, busy, "queue_full", headers={"Retry-After": str(exc.retry_after)}) from None
    except WorkerStopped:
        raise ApiError(503, "the server is shutting down", "server_stopping") from None


# --- the job's outcome, shared by every endpoint that generates ------------------------------------------


@dataclass(frozen=True)
class Finished:
    stats: GenerationStats
    sources: list[dict[str, Any]] | None  # set when the answer was grounded in documents


async def outcomes(ticket: Ticket) -> AsyncIterator[str | Finished]:
    """The job's text pieces, then one `Finished`; every failure is raised as the ApiError to report.

    The OpenAI and the Ollama endpoints both read a generation through this, so what a worker failure
    means (503 shutting down, 500 bug, 400 refused) is decided in one place.
    """
    done: ChatEvent | None = None
    sources: Sources | None = None
    try:
        async for item in ticket:
            if isinstance(item, SetupFailed):
                raise ApiError(503, item.message, "model_unavailable")
            if isinstance(item, Sources):
                sources = item
            elif item.kind == "text":
                yield item.text
            elif item.kind == "error":
                raise ApiError(400, item.text, "generation_failed")
            else:
                done = item
    except WorkerStopped:
        raise ApiError(503, "the server is shutting down", "server_stopping") from None
    except JobFailed:
        raise ApiError(500, "the server failed to generate an answer (see its log)", "internal_error") from None
    if done is None or done.stats is None:
        raise ApiError(503, "the generation was cut short", "server_stopping")
    yield Finished(done.stats, None if sources is None else sources.items)


async def collect(ticket: Ticket, request: Request) -> tuple[str, Finished]:
    """A whole answer (non-streaming requests); a client that goes away cancels the generation."""
    watcher = asyncio.create_task(_cancel_on_disconnect(request, ticket))
    parts: list[str] = []
    try:
        async for item in outcomes(ticket):
            if isinstance(item, Finished):
                return "".join(parts), item
            parts.append(item)
    finally:
        watcher.cancel()
        ticket.cancel()
    raise AssertionError("outcomes() ends with Finished or raises")


def count_passages(request: Request, finished: Finished) -> None:
    """Tell the access log how many document passages this answer returned (never which)."""
    request.scope.setdefault("state", {})["hearth_passages"] = len(finished.sources or [])


# --- non-streaming -------------------------------------------------------------------------------------


async def complete(model: str, ticket: Ticket, request: Request) -> JSONResponse:
    text, finished = await collect(ticket, request)
    count_passages(request, finished)
    stats = finished.stats
    body = schemas.completion(
        schemas.new_id("chatcmpl"),
        schemas.now(),
        model,
        text,
        FINISH_REASONS[stats.finish_reason],
        schemas.usage(stats.prompt_tokens, stats.completion_tokens),
    )
    if finished.sources is not None:
        body["hearth_sources"] = finished.sources
    return JSONResponse(body)


async def _cancel_on_disconnect(request: Request, ticket: Ticket) -> None:
    """Non-streaming requests: the body is read, so the next ASGI message is the client going away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            ticket.cancel()
            return


# --- streaming -------------------------------------------------------------------------------------------


def stream(req: ChatCompletionRequest, model: str, ticket: Ticket, request: Request) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(req, model, ticket, request), media_type="text/event-stream", headers=headers)


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(req: ChatCompletionRequest, model: str, ticket: Ticket, request: Request) -> AsyncIterator[str]:
    """SSE lines; a client that disconnects cancels this generator, which cancels the ticket."""
    cid, created = schemas.new_id("chatcmpl"), schemas.now()
    include_usage = req.stream_options is not None and req.stream_options.include_usage
    try:
        yield _sse(schemas.chunk(cid, created, model, {"role": "assistant", "content": ""}))
        try:
            async for item in outcomes(ticket):
                if isinstance(item, str):
                    yield _sse(schemas.chunk(cid, created, model, {"content": item}))
                    continue
                count_passages(request, item)
                final = schemas.chunk(cid, created, model, {}, FINISH_REASONS[item.stats.finish_reason])
                if item.sources is not None:
                    final["hearth_sources"] = item.sources
                yield _sse(final)
                if include_usage:
                    tail = schemas.chunk(cid, created, model, {})
                    tail["choices"] = []
                    tail["usage"] = schemas.usage(item.stats.prompt_tokens, item.stats.completion_tokens)
                    yield _sse(tail)
        except ApiError as error:
            yield _sse(error.body())
        yield "data: [DONE]\n\n"
    finally:
        ticket.cancel()
