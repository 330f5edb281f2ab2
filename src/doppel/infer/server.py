"""`doppel serve`: an OpenAI-compatible chat API and a web chat page, on one FastAPI app.

`model` picks the persona ("doppel/Alex"); a message's optional `name` says who speaks. A reply of
several messages comes back as one assistant message, the messages joined by a blank line
(REPLY_SEP), and as a list in the `doppel` extension field, next to the memories the reply read
(`doppel.memories`: date, chat, who was there, the lines; in a stream, on the last chunk's
delta; `doppel.warnings` beside them when a message's `name` names nobody in the dataset, or
several people, so memory read nothing). OpenAI clients ignore the field. Incoming contents
are split on the same blank line, so a reply sent back as history keeps its message boundaries.

Concurrent requests share the model through continuous batching (Engine.start, infer/batcher.py):
up to max_batch generate together, queue_size more wait (503 beyond that), each with a deadline
(504); a client that hangs up leaves the batch at the next decode step. Each request's place is
a Turn, given back however the request ends. Bodies over MAX_BODY bytes get 413; without an API
key only loopback Host names are answered (LoopbackOnly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, get_args

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from doppel.errors import DoppelError
from doppel.infer.engine import Delta
from doppel.infer.hosts import host_name, is_loopback
from doppel.infer.options import ApiOptions
from doppel.infer.recall import memories_json
from doppel.infer.sampling import SamplingParams

REPLY_SEP = "\n\n"
MODEL_PREFIX = "doppel/"
STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20  # bytes; a chat history this long would not fit any context window anyway


class Backend(Protocol):
    """What the server needs from a model: Engine, or EchoBackend in tests."""

    personas: list[str]

    @property
    def default_persona(self) -> str: ...
    def can_play(self, name: str) -> bool: ...
    def default_partner(self, persona: str) -> str: ...
    def start(self, history: Sequence[tuple[str, str]], respondent: str,
              params: SamplingParams, on_delta: Callable[[Delta], None]) -> Generation:
        """Begin generating (deltas arrive through on_delta, on another thread); bad input
        raises DoppelError here, before anything is queued."""
        ...


class ApiError(Exception):
    """An error answered in OpenAI's JSON shape."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param = code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


# --- request schema (OpenAI's, with doppel's extra sampling knobs) ---------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, min_length=1, max_length=200)


def _sampling(name: str) -> Any:
    """SamplingParams' field `name` as an optional request field: its type and range, no default
    (an absent one takes the server's default), so the API and the CLI accept the same values."""
    info = SamplingParams.model_fields[name]
    kind = info.annotation if type(None) in get_args(info.annotation) else info.annotation | None
    return Annotated[kind, *info.metadata] if info.metadata else kind


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI fields doppel does not use are ignored
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: _sampling("temperature") = None
    top_p: _sampling("top_p") = None
    top_k: _sampling("top_k") = None
    repetition_penalty: _sampling("repetition_penalty") = None
    max_tokens: _sampling("max_new_tokens") = None  # OpenAI's names for max_new_tokens
    max_completion_tokens: _sampling("max_new_tokens") = None
    seed: _sampling("seed") = None
    n: int = Field(1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None


# --- the queue -------------------------------------------------------------------------------
class Generation(Protocol):
    """A started generation; cancel() takes it out of the running batch at the next step."""

    def cancel(self) -> None: ...


class Scheduler:
    """Admission in front of the backend's running batch: at most max_batch generate at once,
    queue_size more wait (503 beyond that), and each request has a deadline (504)."""

    def __init__(self, backend: Backend, queue_size: int, timeout_s: float,
                 max_batch: int) -> None:
        self.backend, self.timeout_s = backend, timeout_s
        self.capacity = max_batch + queue_size
        self.admitted = 0
        self.running = 0

    def admit(self, history: list[tuple[str, str]], persona: str,
              params: SamplingParams) -> Turn:
        """Take a place (503 when none is free) and start the generation in it. A start that
        fails (text the tokenizer refuses: DoppelError, 400) gives the place back at once."""
        if self.admitted >= self.capacity:
            raise ApiError(503, f"the server is busy ({self.admitted} requests queued); "
                           "retry later", "server_busy", "queue_full")
        self.admitted += 1
        turn = Turn(self, time.monotonic() + self.timeout_s)
        try:
            turn.begin(history, persona, params)
        except BaseException:
            turn.close()
            raise
        return turn

    def status(self) -> dict[str, int]:
        return {"running": self.running, "waiting": max(self.admitted - self.running, 0),
                "capacity": self.capacity}


class Turn:
    """One request's place and its generation, from admission until close(), which gives both
    back exactly once however the request ends: done, failed before or after its first token,
    timed out, or its client gone. Whoever answers the request holds it in `with turn:` (the
    JSON reply, or TurnStream for the whole life of a stream); nothing else releases."""

    def __init__(self, scheduler: Scheduler, deadline: float) -> None:
        self.scheduler, self.deadline = scheduler, deadline
        self.inbox: asyncio.Queue[Delta] = asyncio.Queue()
        self.generation: Generation | None = None
        self.running = self.closed = False

    def begin(self, history: list[tuple[str, str]], persona: str,
              params: SamplingParams) -> None:
        loop, inbox = asyncio.get_running_loop(), self.inbox
        try:
            self.generation = self.scheduler.backend.start(
                history, persona, params,
                lambda delta: loop.call_soon_threadsafe(inbox.put_nowait, delta))
        except DoppelError as error:  # bad input the engine found (a lone surrogate)
            raise ApiError(400, f"invalid request: {error}", param="messages") from None

    async def deltas(self) -> AsyncIterator[Delta]:
        """The generation's deltas until the last one; a failed generation raises ApiError."""
        while True:
            delta = await self._next()
            if not self.running:
                self.running = True
                self.scheduler.running += 1
            if delta.done and (delta.finish_reason or "").startswith("error"):
                raise ApiError(500, f"generation failed: {delta.finish_reason}",
                               "server_error", "generation_failed")
            yield delta
            if delta.done:
                return

    async def _next(self) -> Delta:
        timeout_s = self.scheduler.timeout_s
        try:
            async with asyncio.timeout(max(self.deadline - time.monotonic(), 0)):
                return await self.inbox.get()
        except TimeoutError:
            if not self.running:
                raise ApiError(503, f"waited {timeout_s:g}s in the queue; retry later",
                               "server_busy", "queue_timeout") from None
            raise ApiError(504, f"generation took longer than {timeout_s:g}s", "timeout",
                           "generation_timeout") from None

    def close(self) -> None:
        """Stop the generation (it leaves the batch at its next step) and free the place."""
        if self.closed:
            return
        self.closed = True
        if self.generation is not None:
            self.generation.cancel()
        self.scheduler.running -= self.running
        self.scheduler.admitted -= 1

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class TurnStream(StreamingResponse):
    """A streamed reply that holds its Turn until the response is over, however it ends (the
    last chunk, an error while streaming, a client that hung up, a cancelled task)."""

    def __init__(self, turn: Turn, content: AsyncIterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.turn = turn

    async def __call__(self, scope, receive, send) -> None:
        with self.turn:
            await super().__call__(scope, receive, send)


# --- translating OpenAI requests -------------------------------------------------------------
def _text(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content if part.type == "text")


def persona_of(backend: Backend, model: str) -> str:
    name = model.removeprefix(MODEL_PREFIX)
    if not backend.can_play(name):
        known = ", ".join(MODEL_PREFIX + p for p in backend.personas)
        raise ApiError(404, f"The model {model!r} does not exist; this server plays: {known}",
                       code="model_not_found", param="model")
    return name


def history_of(messages: list[ChatMessage], persona: str, partner: str) -> list[tuple[str, str]]:
    """(speaker, text) pairs: assistant = the persona, user = the partner, unless `name` says."""
    history = []
    for message in messages:
        if message.role not in ("user", "assistant"):
            continue  # the persona comes from `model`; system prompts have no place in a chat log
        speaker = message.name or (persona if message.role == "assistant" else partner)
        history += [(speaker, part.strip()) for part in _text(message.content).split(REPLY_SEP)
                    if part.strip()]
    return history


def params_of(request: ChatRequest, defaults: SamplingParams) -> SamplingParams:
    """The server's defaults with what the request sets (OpenAI's max_tokens is max_new_tokens)."""
    given = {name: getattr(request, name, None) for name in SamplingParams.model_fields}
    given["max_new_tokens"] = request.max_completion_tokens or request.max_tokens
    return defaults.replace(**{k: v for k, v in given.items() if v is not None})


# --- the app ---------------------------------------------------------------------------------
def create_app(backend: Backend, options: ApiOptions | None = None) -> FastAPI:
    """The API + web page for one backend; `options.api_key` makes /v1 require `Bearer <key>`.
    (host and port are uvicorn's, not the app's.)"""
    options = options or ApiOptions()
    api_key, queue_size, timeout_s = options.api_key, options.queue_size, options.timeout
    defaults = options.sampling
    max_batch = min(options.batch_size, getattr(backend, "max_batch", options.batch_size))
    if hasattr(backend, "batcher"):
        backend.batcher(max_batch)  # an Engine: start its batch worker at this size

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.scheduler = Scheduler(backend, queue_size, timeout_s, max_batch)
        yield

    app = FastAPI(title="doppel", lifespan=lifespan, docs_url=None, redoc_url=None)
    add_guards(app, api_key)
    add_error_handlers(app)

    async def check_key(request: Request) -> None:
        if api_key:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                raise ApiError(401, "missing or wrong API key; send `Authorization: Bearer KEY`",
                               code="invalid_api_key")

    keyed = [Depends(check_key)]

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "queue": request.app.state.scheduler.status()}

    @app.get("/v1/models", dependencies=keyed)
    async def models() -> dict[str, Any]:
        names = backend.personas or [backend.default_persona]
        data = [{"id": MODEL_PREFIX + name, "object": "model", "created": 0, "owned_by": "doppel",
                 "doppel": {"persona": name, "partner": backend.default_partner(name)}}
                for name in names]
        return {"object": "list", "data": data,
                "doppel": {"default": MODEL_PREFIX + backend.default_persona,
                           "any_name": not backend.personas}}

    @app.post("/v1/chat/completions", dependencies=keyed)
    async def chat_completions(body: ChatRequest, request: Request):
        persona = persona_of(backend, body.model)
        history = history_of(body.messages, persona, backend.default_partner(persona))
        warnings = unplaced_names(backend, history, persona)
        params = params_of(body, defaults)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": MODEL_PREFIX + persona}
        usage = bool((body.stream_options or {}).get("include_usage"))
        turn = request.app.state.scheduler.admit(history, persona, params)
        if body.stream:
            return TurnStream(turn, _sse(turn.deltas(), meta, persona, usage, warnings),
                              media_type="text/event-stream",
                              headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        with turn:
            return await _complete(turn.deltas(), meta, persona, warnings)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def unplaced_names(backend: Backend, history: list[tuple[str, str]], persona: str) -> list[str]:
    """Why memory reads nothing for this request, when a speaker's name (a message's `name`, or
    the default partner) names nobody in the dataset, or several people: one line each, for the
    response's `doppel.warnings`, never a silently empty scope. Names resolve by
    data/people.py's rule ("Sam" is "Sam Carter")."""
    recall = getattr(backend, "recall", None)
    if recall is None or recall.scope == "all":
        return []
    return recall.unplaced([speaker for speaker, _ in history if speaker != persona], "name")


async def _complete(deltas: AsyncIterator[Delta], meta: dict[str, Any],
                    persona: str, warnings: Sequence[str] = ()) -> JSONResponse:
    messages: list[str] = []
    last = Delta("", 0, done=True, finish_reason="length")
    async for delta in deltas:
        if delta.text:
            messages += [""] * (delta.message_index + 1 - len(messages))
            messages[delta.message_index] += delta.text
        last = delta
    messages = [m for m in messages if m]
    message = {"role": "assistant", "name": persona, "content": REPLY_SEP.join(messages),
               "doppel": {"messages": messages, "memories": memories_json(last.memories),
                          **_warned(warnings)}}
    body = {**meta, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": last.finish_reason}],
            "usage": _usage(last)}
    return JSONResponse(body)


def _usage(last: Delta) -> dict[str, int]:
    return {"prompt_tokens": last.prompt_tokens, "completion_tokens": last.completion_tokens,
            "total_tokens": last.prompt_tokens + last.completion_tokens}


def _warned(warnings: Sequence[str]) -> dict[str, list[str]]:
    """The `warnings` field, present only when there is something to say."""
    return {"warnings": list(warnings)} if warnings else {}


async def _sse(deltas: AsyncIterator[Delta], meta: dict[str, Any], persona: str,
               include_usage: bool, warnings: Sequence[str] = ()) -> AsyncIterator[str]:
    """OpenAI's chunk stream; each chunk says which message its text belongs to."""

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        body = {**meta, "object": "chat.completion.chunk", "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "name": persona, "content": ""})
    current = -1
    try:
        async for delta in deltas:
            if delta.text:
                gap = REPLY_SEP if 0 <= current < delta.message_index else ""
                current = delta.message_index
                yield chunk({"content": gap + delta.text, "doppel": {"message_index": current}})
            if delta.done:
                yield chunk({"doppel": {"memories": memories_json(delta.memories),
                                        **_warned(warnings)}}, delta.finish_reason)
                if include_usage:
                    yield chunk(None, usage=_usage(delta))
    except ApiError as error:  # the status line is long gone: report in the stream, as OpenAI does
        yield f"data: {json.dumps(error.body())}\n\n"
    yield "data: [DONE]\n\n"


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        if isinstance(first.get("input"), bytes):  # FastAPI read no JSON: its type was not JSON
            refused = ApiError(415, "invalid request: send the body as JSON, with the header "
                               "Content-Type: application/json", code="unsupported_media_type")
            return JSONResponse(refused.body(), status_code=415)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'bad body')}"
        return JSONResponse(ApiError(400, message, param=where or None).body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return JSONResponse(ApiError(error.status_code, str(error.detail), kind).body(),
                            status_code=error.status_code, headers=error.headers)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes gets 413 before anyone parses it.

    The body is read here (at most `limit` bytes are kept) and replayed to the app, so a chunked
    body without Content-Length is bounded too.
    """

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if int(declared or 0) > self.limit:
            return await self._refuse(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._refuse(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for a disconnect
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        error = ApiError(413, f"the request body is over {self.limit // 1024} KiB",
                         code="request_too_large")
        await JSONResponse(error.body(), status_code=413)(scope, receive, send)


class LoopbackOnly:
    """ASGI middleware for a server without a key: a request whose Host header is not a loopback
    name or address (infer/hosts.py) gets 400 before the app sees it, so a web page that points
    its own name at 127.0.0.1 (DNS rebinding) reads nothing. The name a keyless server was told
    to bind to passes too: check_exposure lets only loopback names bind without a key."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = Headers(scope=scope).get("host")
        name = host_name(given)
        if name is not None and is_loopback(name):
            return await self.app(scope, receive, send)
        named = f"Host {given!r}" if given else "a request without a Host header"
        error = ApiError(400, f"{named} is not this machine: a server without --api-key "
                         "answers only requests to localhost, 127.0.0.1 or [::1] (a web page "
                         "under another name is refused); open one of those, or start it with "
                         "--api-key", code="untrusted_host")
        await JSONResponse(error.body(), status_code=400)(scope, receive, send)


def add_guards(app: FastAPI, api_key: str | None) -> None:
    """What `doppel serve` and `doppel blindtest` put in front of their routes: the body limit,
    and without a key the Host check (with one, the key guards what is private)."""
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    if not api_key:
        app.add_middleware(LoopbackOnly)  # added last: runs first


def run_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0):
    """Start uvicorn on a background thread (tests, benchmarks); return (server, base_url)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    return server, f"http://{bound[0]}:{bound[1]}"
