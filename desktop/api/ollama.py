"""Ollama's API on the same port, for the many tools that speak only Ollama (editor assistants, browser
extensions, note-taking plugins).

Shapes follow Ollama's docs/api.md: `/api/version`, `/api/tags`, `/api/show`, `/api/ps`, `/api/chat` and
`/api/generate` (NDJSON streams by default, one JSON object with `stream: false`), `/api/embed` and the older
`/api/embeddings`. Errors are Ollama's `{"error": "..."}`.

Generation goes through the same helpers as `/v1/chat/completions` (desktop/api/chat.py): an Ollama request
becomes a `ChatCompletionRequest`, so validation, the chat queue on the engine executor (429 with
Retry-After, 503 while stopping; shared with the window when it hosts the API), grounding and the personal
adapter behave identically on both APIs.

Model names: `hearth` (also `hearth:latest`, and the running model's own name) is the base model, without
the personal adapter; `hearth:personal` is the same model with the user's active personal adapter, listed
only when one is active and only to clients with a token. Tokenless clients (an opt-in, see
desktop/api/security.py) get the base model only.

Past ~400 lines on purpose: it is a catalogue of Ollama's response shapes, one small function per shape;
the behaviour behind them lives in chat.py, embeddings.py and the engine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from desktop.api import chat, embeddings
from desktop.api.errors import ApiError
from desktop.api.schemas import ChatCompletionRequest, EmbeddingRequest
from desktop.api.security import client_of, require
from desktop.engine import DEFAULT_N_CTX, models

if TYPE_CHECKING:
    from desktop.api.app import ApiState
    from storage.clients import Client

VERSION = "0.6.3"  # the Ollama API release whose shapes these endpoints follow (clients check it)
ALIAS = "hearth"
PERSONAL = "hearth:personal"
EMBEDDING = "all-minilm"  # Ollama's own name for all-MiniLM-L6-v2
EMBEDDING_NAMES = frozenset({EMBEDDING, embeddings.EMBEDDING_MODEL})


class Options(BaseModel):
    """The runtime options Hearth honours; others Ollama knows (mirostat, num_gpu, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, ge=0.0)
    num_predict: int | None = None  # -1 (Ollama's "no limit") or None: the server's cap
    num_ctx: int | None = Field(default=None, ge=1)  # the context is fixed when the model loads; see README
    seed: int | None = None
    stop: list[str] | str | None = None


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # keep_alive, think, ... accepted and ignored
    model: str
    messages: list[OllamaMessage] = Field(default_factory=list)
    stream: bool = True
    options: Options | None = None
    format: Any = None
    tools: list[Any] | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str = ""
    system: str | None = None
    stream: bool = True
    options: Options | None = None
    format: Any = None
    images: list[str] | None = None
    raw: bool = False
    suffix: str | None = None


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    name: str | None = None  # older clients send `name`


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    input: str | list[str]
    truncate: bool = True
    dimensions: int | None = Field(default=None, ge=1)


class LegacyEmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str


# --- names and model metadata ------------------------------------------------------------------------


def _base(name: str) -> str:
    return name.removesuffix(":latest")


def _chat_adapter(state: ApiState, name: str, client: Client) -> str:
    """The `hearth_adapter` value for a chat model name: "off" (base) or "active"; 404 otherwise."""
    base = _base(name)
    if base in (ALIAS, state.config.model_name):
        return "off"
    if name == PERSONAL and not client.base_model_only:
        return "active"
    if base in EMBEDDING_NAMES:
        raise ApiError(400, f"{name!r} is an embedding model; it cannot chat", "invalid_model")
    raise ApiError(404, f"model {name!r} not found", "model_not_found")


def _stamp(seconds: float | None = None) -> str:
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@functools.cache
def _gguf_details(path: Path, size: int, mtime: float) -> dict[str, Any]:
    """Ollama's `details` for a GGUF (cached per file version: reading the header costs milliseconds)."""
    from desktop.engine import gguf_file

    info = gguf_file.inspect(path)
    count = info.metadata.get("general.size_label") or ""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": info.architecture,
        "families": [info.architecture],
        "parameter_size": str(count),
        "quantization_level": info.file_type,
        "context_length": info.context_length,
    }


def _file_entry(name: str, path: Path, details: dict[str, Any] | None = None) -> dict[str, Any]:
    stat = path.stat()
    # A digest of the file's identity (path, size, mtime), not of its bytes: hashing a model on every
    # listing would cost seconds; this still changes whenever the file does.
    digest = hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    info = details if details is not None else _gguf_details(path, stat.st_size, stat.st_mtime)
    return {
        "name": name,
        "model": name,
        "modified_at": _stamp(stat.st_mtime),
        "size": stat.st_size,
        "digest": digest,
        "details": {k: v for k, v in info.items() if k != "context_length"},
    }


def _embedding_entry() -> dict[str, Any]:
    from storage.embeddings import model_path

    path = Path(model_path())
    weights = next((p for p in sorted(path.rglob("*.safetensors"))), path)
    details = {
        "parent_model": "",
        "format": "safetensors",
        "family": "bert",
        "families": ["bert"],
        "parameter_size": "23M",
        "quantization_level": "F32",
    }
    return _file_entry(f"{EMBEDDING}:latest", weights, details)


async def _personal_active(state: ApiState, client: Client) -> bool:
    if client.base_model_only or not client.allows("chat") or state.backend.store is None:
        return False
    return await state.gate.read(_active_adapter_id) is not None


def _active_adapter_id(db: Any) -> str | None:
    from personalize.registry import ACTIVE_KEY

    row = db.execute("SELECT value FROM settings WHERE key = ?", [ACTIVE_KEY]).fetchone()
    value = json.loads(row[0]) if row else None
    return str(value) if value else None


# --- routes ------------------------------------------------------------------------------------------


def add_routes(app: FastAPI, state: ApiState) -> None:
    model_path = models.find(state.config.model_name).path if state.config.model_name else None

    def chat_models() -> list[str]:
        return [f"{ALIAS}:latest", f"{state.config.model_name}:latest"]

    @app.get("/api/version")
    async def version() -> dict[str, str]:
        return {"version": VERSION}

    @app.get("/api/tags")
    async def tags(request: Request) -> dict[str, Any]:
        client = client_of(request)
        entries = [_file_entry(name, model_path) for name in chat_models()] if model_path else []
        if entries and await _personal_active(state, client):
            entries.append(_file_entry(PERSONAL, model_path))
        entries.append(_embedding_entry())
        return {"models": entries}

    @app.get("/api/ps")
    async def running() -> dict[str, Any]:
        if model_path is None:
            return {"models": []}
        entry = _file_entry(f"{ALIAS}:latest", model_path)
        details = _gguf_details(model_path, entry["size"], model_path.stat().st_mtime)
        n_ctx = min(DEFAULT_N_CTX, details["context_length"] or DEFAULT_N_CTX)
        return {"models": [{**entry, "expires_at": "0001-01-01T00:00:00Z", "size_vram": 0, "context_length": n_ctx}]}

    @app.post("/api/show")
    async def show(req: ShowRequest, request: Request) -> dict[str, Any]:
        name = req.model or req.name
        if not name:
            raise ApiError(400, "model is required", "invalid_value")
        client = client_of(request)
        if _base(name) in EMBEDDING_NAMES:
            entry, capabilities, info = _embedding_entry(), ["embedding"], {"general.architecture": "bert"}
        else:
            adapter = _chat_adapter(state, name, client)
            if model_path is None or (adapter == "active" and not await _personal_active(state, client)):
                raise ApiError(404, f"model {name!r} not found", "model_not_found")
            entry, capabilities = _file_entry(name, model_path), ["completion"]
            details = _gguf_details(model_path, entry["size"], model_path.stat().st_mtime)
            arch = details["family"]
            info = {"general.architecture": arch, f"{arch}.context_length": details["context_length"]}
        return {
            "modelfile": "",
            "parameters": "",
            "template": "",
            "details": entry["details"],
            "model_info": info,
            "capabilities": capabilities,
            "modified_at": entry["modified_at"],
        }

    @app.post("/api/chat")
    async def ollama_chat(req: ChatRequest, request: Request) -> Any:
        client = require(request, "chat")
        _refuse_unsupported(tools=req.tools, format=req.format, images=any(m.images for m in req.messages))
        adapter = _chat_adapter(state, req.model, client)
        if not req.messages:  # Ollama loads the model and answers at once
            return _loaded(req.model, {"message": {"role": "assistant", "content": ""}})
        messages = [{"role": m.role, "content": m.content} for m in req.messages if m.role != "tool"]
        return await _generate(state, request, req.model, adapter, messages, req.options, req.stream, "chat")

    @app.post("/api/generate")
    async def ollama_generate(req: GenerateRequest, request: Request) -> Any:
        client = require(request, "chat")
        _refuse_unsupported(format=req.format, images=bool(req.images), raw=req.raw, suffix=req.suffix)
        adapter = _chat_adapter(state, req.model, client)
        if not req.prompt:
            return _loaded(req.model, {"response": ""})
        messages = [{"role": "system", "content": req.system}] if req.system else []
        messages.append({"role": "user", "content": req.prompt})
        return await _generate(state, request, req.model, adapter, messages, req.options, req.stream, "generate")

    @app.post("/api/embed")
    async def embed(req: EmbedRequest, request: Request) -> dict[str, Any]:
        require(request, "embeddings")
        texts = _embedding_inputs(req.model, req.input, req.dimensions)
        started = _now_ns()
        vectors, tokens = await embeddings.run(state, texts)
        return {
            "model": req.model,
            "embeddings": vectors,
            "total_duration": _now_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": tokens,
        }

    @app.post("/api/embeddings")
    async def legacy_embeddings(req: LegacyEmbeddingsRequest, request: Request) -> dict[str, Any]:
        require(request, "embeddings")
        vectors, _ = await embeddings.run(state, _embedding_inputs(req.model, req.prompt, None))
        return {"embedding": vectors[0]}


def _embedding_inputs(model: str, raw: str | list[str], dimensions: int | None) -> list[str]:
    if _base(model) not in EMBEDDING_NAMES | {ALIAS}:
        raise ApiError(404, f"model {model!r} not found", "model_not_found")
    return embeddings.inputs_of(EmbeddingRequest(model=embeddings.EMBEDDING_MODEL, input=raw, dimensions=dimensions))


def _refuse_unsupported(**fields: Any) -> None:
    for name, value in fields.items():
        if value:
            raise ApiError(400, f"{name} is not supported by Hearth's Ollama API", "unsupported_parameter", name)


def _loaded(model: str, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"model": model, "created_at": _stamp(), **body, "done": True, "done_reason": "load"})


def _now_ns() -> int:
    return time.perf_counter_ns()


def _openai_request(
    model: str, adapter: str | None, messages: list[dict[str, str]], options: Options | None, stream: bool, cap: int
) -> ChatCompletionRequest:
    """The Ollama request as the OpenAI one the shared helpers take; bad option values are a 400."""
    o = options or Options()
    predict = o.num_predict
    try:
        return ChatCompletionRequest(
            model=ALIAS,
            messages=messages,
            max_tokens=cap if predict is None or predict < 0 else max(predict, 1),
            temperature=o.temperature,
            top_p=o.top_p,
            seed=o.seed,
            stop=o.stop,
            stream=stream,
            hearth_adapter=adapter,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ApiError(400, f"options.{field}: {first['msg']}", "invalid_value", field) from None


async def _generate(
    state: ApiState,
    request: Request,
    model: str,
    adapter: str | None,
    messages: list[dict[str, str]],
    options: Options | None,
    stream: bool,
    kind: Literal["chat", "generate"],
) -> Any:
    if state.backend.store is None:  # no store, no adapters: the engine runs the base model
        adapter = None
    req = _openai_request(model, adapter, messages, options, stream, state.config.max_tokens_cap)
    turn, params = chat.prepare(state, req, client_of(request))
    o = options or Options()
    if o.num_predict == 0:  # nothing to generate (validated first, like any request)
        return _loaded(model, _piece(kind, ""))
    extra = {k: v for k, v in (("top_k", o.top_k), ("repeat_penalty", o.repeat_penalty)) if v is not None}
    params = dataclasses.replace(params, **extra)
    ticket = chat.submit(state.chat_worker, chat.job(state, req, turn, params))
    started = _now_ns()
    if stream:
        return StreamingResponse(_lines(model, kind, ticket, request, started), media_type="application/x-ndjson")
    text, finished = await chat.collect(ticket, request)
    chat.count_passages(request, finished)
    return JSONResponse({**_piece_of(model, kind, text), **_final(finished, started)})


def _piece(kind: str, text: str) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text}} if kind == "chat" else {"response": text}


def _piece_of(model: str, kind: str, text: str) -> dict[str, Any]:
    return {"model": model, "created_at": _stamp(), **_piece(kind, text)}


def _final(finished: chat.Finished, started_ns: int) -> dict[str, Any]:
    stats = finished.stats
    prompt_ns = int(stats.time_to_first_token_s * 1e9)
    eval_ns = int(stats.completion_tokens / stats.decode_tokens_per_s * 1e9) if stats.decode_tokens_per_s else 0
    return {
        "done": True,
        "done_reason": "length" if stats.finish_reason == "length" else "stop",
        "total_duration": _now_ns() - started_ns,
        "load_duration": 0,
        "prompt_eval_count": stats.prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": stats.completion_tokens,
        "eval_duration": eval_ns,
    }


async def _lines(model: str, kind: str, ticket: Any, request: Request, started: int) -> AsyncIterator[str]:
    """NDJSON: one object per text piece (`done: false`), then the final one with the counts. A failure
    mid-stream is one `{"error": ...}` line, as Ollama sends it."""
    try:
        async for item in chat.outcomes(ticket):
            if isinstance(item, str):
                yield json.dumps({**_piece_of(model, kind, item), "done": False}, ensure_ascii=False) + "\n"
            else:
                chat.count_passages(request, item)
                yield json.dumps({**_piece_of(model, kind, ""), **_final(item, started)}) + "\n"
    except ApiError as error:
        yield json.dumps(error.body(ollama=True)) + "\n"
    finally:
        ticket.cancel()
