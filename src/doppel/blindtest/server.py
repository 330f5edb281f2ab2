"""The blind test over HTTP, on `doppel serve`'s stack (FastAPI, its body limit, its JSON errors,
its --host/--api-key rule, its Host check without a key): one page per judge link, an API the
page talks to.

GET /t/TOKEN is the judge's page (404 for any other path: no page, no item). The page sends the
token as `Authorization: Bearer TOKEN` to /api/test (the judge's items, never whose candidate is
whose, and the answers so far, for resuming) and /api/answer; a missing or wrong token gets 401.
/api/results is the owner's: it needs --api-key, as /v1 does in `doppel serve`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from doppel.blindtest.results import compute
from doppel.blindtest.store import BlindStore
from doppel.infer.server import ApiError, add_error_handlers, add_guards

STATIC = Path(__file__).parent / "static"
HEADERS = {  # the token is in the page's URL: never send it on as a referrer, never cache
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
}


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: int
    pick: int = Field(ge=0)
    ratings: list[int | None] | None = None


def find_judge(store: BlindStore, token: str) -> str | None:
    """The judge whose token this is; every token is compared in constant time."""
    found = None
    for name, known in store.judges().items():
        if secrets.compare_digest(token.encode(), known.encode()):
            found = name
    return found


def check_answer(store: BlindStore, judge: str, body: AnswerBody) -> list[int | None]:
    """The answer's item must be the judge's, its pick and ratings in range; the ratings."""
    items = {item.id: item for item in store.items(judge)}
    item = items.get(body.item)
    if item is None:
        raise ApiError(404, f"item {body.item} is not in your test", code="unknown_item",
                       param="item")
    count = len(item.candidates)
    if body.pick >= count:
        raise ApiError(400, f"pick must be 0 to {count - 1}", param="pick")
    ratings = body.ratings or [None] * count
    if len(ratings) != count or any(r is not None and not 1 <= r <= 5 for r in ratings):
        raise ApiError(400, f"ratings must be {count} values, each 1 to 5 or null",
                       param="ratings")
    return ratings


def create_app(store: BlindStore, api_key: str | None = None) -> FastAPI:
    """The judges' pages and API over one store."""
    app = FastAPI(title="doppel blindtest", docs_url=None, redoc_url=None, openapi_url=None)
    add_guards(app, api_key)
    add_error_handlers(app)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    def judge_of(request: Request) -> str:
        given = request.headers.get("authorization", "")
        token = given.removeprefix("Bearer ").strip() if given.startswith("Bearer ") else ""
        judge = find_judge(store, token) if token else None
        if judge is None:
            raise ApiError(401, "missing or wrong judge token; open the link you were given",
                           code="invalid_token")
        return judge

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/t/{token}", include_in_schema=False)
    async def page(token: str) -> FileResponse:
        if find_judge(store, token) is None:
            raise ApiError(404, "no such test", "not_found_error")
        return FileResponse(STATIC / "quiz.html")

    @app.get("/api/test")
    async def test(request: Request) -> dict[str, Any]:
        judge = judge_of(request)
        meta = store.meta()
        answers = {a.item: {"pick": a.pick, "ratings": a.ratings} for a in store.answers(judge)}
        items = store.items(judge)
        return {"judge": judge, "persona": meta["persona"],
                "items": [item.public() for item in items],
                "answers": {str(k): v for k, v in answers.items()}}

    @app.post("/api/answer")
    async def answer(body: AnswerBody, request: Request) -> dict[str, Any]:
        judge = judge_of(request)
        ratings = check_answer(store, judge, body)
        recorded = store.answer(judge, body.item, body.pick, ratings, "web")
        return {"recorded": recorded, "answered": len(store.answers(judge)),
                "total": len(store.items(judge))}

    @app.get("/api/results")
    async def results(request: Request) -> JSONResponse:
        if not api_key:
            raise ApiError(404, "results over HTTP need --api-key; or run `doppel blindtest RUN "
                           "--results`", "not_found_error")
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise ApiError(401, "missing or wrong API key", code="invalid_api_key")
        return JSONResponse(compute(store).to_json())

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
