"""`doppel serve`: the OpenAI client against a live server, queueing, errors, keys, exposure."""

from __future__ import annotations

import os
import threading
import time

import httpx
import openai
import pytest

from builders import run_cli, run_doppel
from doppel.errors import DoppelError
from doppel.infer.echo import EchoBackend
from doppel.infer.engine import Engine, SamplingParams
from doppel.infer.options import check_exposure
from doppel.infer.server import (
    MAX_BODY,
    REPLY_SEP,
    ChatMessage,
    create_app,
    history_of,
    run_in_thread,
)


@pytest.fixture
def serve():
    """serve(backend, **create_app options) -> base URL of a live server on a free port."""
    servers = []

    def start(backend, **options) -> str:
        server, url = run_in_thread(create_app(backend, **options))
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.should_exit = True


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def embedded():
    return Engine.load("smollm2-135m")


@pytest.mark.slow
def test_openai_client_streaming_and_not_on_the_embedded_model(serve, embedded):
    url = serve(embedded)
    chat = [{"role": "user", "name": "Sam", "content": "hey"},
            {"role": "assistant", "content": "yo"},
            {"role": "user", "name": "Sam", "content": "what's up?"}]
    whole = client(url).chat.completions.create(model="doppel/Alex", messages=chat, max_tokens=16,
                                                seed=5)
    message = whole.choices[0].message
    messages = message.model_extra["doppel"]["messages"]
    expected = embedded.reply([("Sam", "hey"), ("Alex", "yo"), ("Sam", "what's up?")], "Alex",
                              SamplingParams(max_new_tokens=16, seed=5))
    assert messages == expected and messages
    assert message.role == "assistant" and message.content == REPLY_SEP.join(messages)
    assert whole.model == "doppel/Alex" and 0 < whole.usage.completion_tokens <= 16
    assert whole.choices[0].finish_reason in ("stop", "length")

    chunks = list(client(url).chat.completions.create(
        model="doppel/Alex", messages=chat, max_tokens=16, seed=5, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == message.content
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert len(chunks) > 3  # it streamed token by token


def test_models_and_health(serve):
    url = serve(EchoBackend(["Alex", "Sam"]))
    models = client(url).models.list()
    assert [m.id for m in models.data] == ["doppel/Alex", "doppel/Sam"]
    assert models.data[0].model_extra["doppel"] == {"persona": "Alex", "partner": "Sam"}
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_multi_message_reply_keeps_its_boundaries(serve):
    url = serve(EchoBackend())
    reply = client(url).chat.completions.create(
        model="doppel/Sam", messages=[{"role": "user", "content": "hey\n\nwhat's up?"}])
    message = reply.choices[0].message
    # the user's content split at the blank line into two messages, so history had 2 entries
    assert message.model_extra["doppel"]["messages"] == ["what's up?", "(2 messages so far)"]
    assert message.content == "what's up?\n\n(2 messages so far)"


def test_eight_concurrent_streaming_clients_all_finish(serve):
    url = serve(EchoBackend(delay_s=0.005), queue_size=8)
    results: dict[int, str] = {}

    def talk(n: int) -> None:
        stream = client(url).chat.completions.create(
            model="doppel/Alex", stream=True,
            messages=[{"role": "user", "content": f"hey number {n}"}])
        results[n] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {n: f"hey number {n}\n\n(1 messages so far)" for n in range(8)}


def long_request(stream: bool) -> dict:
    return {"model": "doppel/Alex", "stream": stream, "max_tokens": 400,
            "messages": [{"role": "user", "content": "word " * 300}]}


def test_a_full_queue_answers_503_and_a_dropped_stream_frees_its_place(serve):
    backend = EchoBackend(delay_s=0.02)
    url = serve(backend, queue_size=0, max_batch=1)  # room for exactly one request
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_request(True)) as first:
        lines = first.iter_lines()  # held: a dropped iterator closes the connection
        next(lines)
        busy = httpx.post(f"{url}/v1/chat/completions", json=long_request(False))
        assert busy.status_code == 503
        assert busy.json()["error"]["code"] == "queue_full"
    # the client hung up mid-stream: its place and the model come free, unfinished
    idle = {"running": 0, "waiting": 0, "capacity": 1}
    for _ in range(100):
        if httpx.get(f"{url}/health").json()["queue"] == idle:
            break
        time.sleep(0.05)
    after = client(url).chat.completions.create(model="doppel/Alex",
                                                messages=[{"role": "user", "content": "hey"}])
    assert after.choices[0].message.content.startswith("hey")
    assert (backend.started, backend.finished) == (2, 1)


def test_a_request_over_its_time_limit_is_stopped(serve):
    url = serve(EchoBackend(delay_s=0.02), timeout_s=0.3)
    slow = httpx.post(f"{url}/v1/chat/completions", json=long_request(False))
    assert slow.status_code == 504 and slow.json()["error"]["type"] == "timeout"
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_request(True)) as streamed:
        lines = [line for line in streamed.iter_lines() if line]
    assert '"generation_timeout"' in lines[-2] and lines[-1] == "data: [DONE]"


@pytest.mark.parametrize(("body", "status", "where"), [
    (b"{not json", 400, ""),
    (b'{"model": "doppel/Alex"}', 400, "messages"),
    (b'{"model": "doppel/Alex", "messages": []}', 400, "messages"),
    (b'{"model": "doppel/Alex", "messages": [{"role": "robot", "content": "x"}]}', 400, "role"),
    (b'{"model": "doppel/Alex", "temperature": 9, "messages": [{"role": "user", "content": "x"}]}',
     400, "temperature"),
    (b'{"model": "doppel/Alex", "n": 2, "messages": [{"role": "user", "content": "x"}]}', 400, "n"),
    (b'{"model": "doppel/Nobody", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
    (b'[1, 2]', 400, ""),
    (b'{"model": "doppel/Alex", "messages": "hi"}', 400, "messages"),
    (b'{"model": "doppel/Alex", "max_tokens": "lots", "messages": [{"role": "user"}]}', 400,
     "max_tokens"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, "model"),
])
def test_malformed_requests_get_openai_shaped_4xx(serve, body, status, where):
    url = serve(EchoBackend())
    response = httpx.post(f"{url}/v1/chat/completions", content=body,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["type"]
    assert where in (error["param"] or "") + error["message"]


def test_bodies_over_the_limit_get_413_declared_or_chunked(serve):
    url = serve(EchoBackend())
    big = b'{"model": "doppel/Alex", "messages": [{"role": "user", "content": "' + \
        b"x" * (2 * MAX_BODY) + b'"}]}'
    declared = httpx.post(f"{url}/v1/chat/completions", content=big,
                          headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    chunked = httpx.post(f"{url}/v1/chat/completions",
                         content=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                         headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    half = {"model": "doppel/Alex", "max_tokens": 4,
            "messages": [{"role": "user", "content": "y" * (MAX_BODY // 2)}]}
    fits = httpx.post(f"{url}/v1/chat/completions", json=half)
    assert fits.status_code == 200


def test_openai_client_sees_an_unknown_persona_as_404(serve):
    url = serve(EchoBackend())
    with pytest.raises(openai.NotFoundError, match="doppel/Alex, doppel/Sam"):
        client(url).chat.completions.create(model="doppel/Nobody",
                                            messages=[{"role": "user", "content": "x"}])


def test_an_api_key_guards_the_api_but_not_health(serve):
    url = serve(EchoBackend(), api_key="s3cret")
    assert httpx.get(f"{url}/health").status_code == 200
    denied = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(url, "nope").chat.completions.create(model="doppel/Alex",
                                                    messages=[{"role": "user", "content": "x"}])
    assert len(client(url, "s3cret").models.list().data) == 2


def test_non_loopback_host_needs_a_key():
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    check_exposure("0.0.0.0", "key")
    for host in ("0.0.0.0", "192.168.1.10", "myhost.example"):
        with pytest.raises(DoppelError, match="--api-key"):
            check_exposure(host, None)


def test_serve_refuses_to_start_on_an_open_host_without_a_key():
    """A real process with no DOPPEL_API_KEY in its environment; refused before any loading."""
    keep = {k: os.environ[k] for k in ("PYTHONPATH", "DOPPEL_CACHE") if k in os.environ}
    done = run_doppel(["serve", "smollm2-135m", "--host", "0.0.0.0"], timeout=120,
                      env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **keep})
    assert done.returncode == 2
    assert "--api-key" in done.stderr and "Traceback" not in done.stderr


def test_serve_batch_size_sizes_the_batch_and_is_checked(monkeypatch, capsys):
    """`doppel serve RUN --batch-size 2`: capacity is the batch plus the queue."""
    import uvicorn

    from doppel.infer import options as infer_options

    apps = []
    monkeypatch.setattr(infer_options, "load_engine", lambda load, *_: EchoBackend())
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: apps.append(app))
    code, _, err = run_cli(["serve", "smollm2-135m", "--batch-size", "2", "--queue-size", "3"],
                           monkeypatch, capsys)
    assert code == 0, err
    server, url = run_in_thread(apps[0])
    try:
        assert httpx.get(f"{url}/health").json()["queue"]["capacity"] == 5
    finally:
        server.should_exit = True
    code, _, err = run_cli(["serve", "smollm2-135m", "--batch-size", "0"], monkeypatch, capsys)
    assert code == 2 and "--batch-size" in err and "Traceback" not in err


def test_history_names_roles_and_message_boundaries():
    messages = [ChatMessage(role="system", content="be nice"),
                ChatMessage(role="user", content="hey\n\n  what's up? "),
                ChatMessage(role="assistant", content=[{"type": "text", "text": "yo"}]),
                ChatMessage(role="user", name="Kim", content="me too")]
    assert history_of(messages, "Alex", "Sam") == [
        ("Sam", "hey"), ("Sam", "what's up?"), ("Alex", "yo"), ("Kim", "me too")]
