"""`doppel serve`: the OpenAI client against a live server, queueing, errors, keys, exposure."""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import openai
import pytest

from builders import run_cli, run_doppel
from doppel.errors import DoppelError
from doppel.infer.echo import EchoBackend
from doppel.infer.engine import Engine, SamplingParams
from doppel.infer.hosts import host_name, is_loopback
from doppel.infer.options import ApiOptions, check_exposure
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
    """serve(backend, **ApiOptions) -> base URL of a live server on a free port."""
    servers = []

    def start(backend, **options) -> str:
        server, url = run_in_thread(create_app(backend, ApiOptions(**options)))
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
    url = serve(backend, queue_size=0, batch_size=1)  # room for exactly one request
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
    url = serve(EchoBackend(delay_s=0.02), timeout=0.3)
    slow = httpx.post(f"{url}/v1/chat/completions", json=long_request(False))
    assert slow.status_code == 504 and slow.json()["error"]["type"] == "timeout"
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_request(True)) as streamed:
        lines = [line for line in streamed.iter_lines() if line]
    assert '"generation_timeout"' in lines[-2] and lines[-1] == "data: [DONE]"


def lone_surrogate(stream: bool) -> bytes:
    """Valid JSON whose text holds a lone surrogate (half a UTF-16 pair): no tokenizer reads it."""
    return (b'{"model": "doppel/Alex", "stream": ' + (b"true" if stream else b"false") +
            b', "messages": [{"role": "user", "content": "hi \\ud800 there"}]}')


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", content=body,
                      headers={"Content-Type": "application/json"})


def wait_idle(url: str) -> dict:
    """The queue once every place is back (or what it is after 5 s)."""
    for _ in range(100):
        queue = httpx.get(f"{url}/health").json()["queue"]
        if queue["running"] == queue["waiting"] == 0:
            break
        time.sleep(0.05)
    return queue


def test_32_requests_the_tokenizer_refuses_give_their_places_back(serve):
    """The issue's jam: a lone surrogate failed the start of a stream outside the code that
    frees its place, so 16 (the default capacity) of them made every client's answer 503."""
    backend = EchoBackend()
    url = serve(backend)
    assert httpx.get(f"{url}/health").json()["queue"]["capacity"] == 16
    for n in range(32):
        refused = post(url, lone_surrogate(stream=n % 4 != 0))  # a quarter not streamed
        assert refused.status_code == 400, (n, refused.text)
        assert "lone surrogate" in refused.json()["error"]["message"]
    assert wait_idle(url) == {"running": 0, "waiting": 0, "capacity": 16}
    stream = client(url).chat.completions.create(
        model="doppel/Alex", stream=True, messages=[{"role": "user", "content": "still here?"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith(
        "still here?")
    assert backend.started == 1  # nothing refused reached the model


def test_clients_that_hang_up_or_run_out_of_time_give_their_places_back(serve):
    """Each way a request can end early, more times than there are places (2), then a normal
    request is answered: a client that closes mid-stream, a stream and a non-streamed request
    stopped by the deadline."""
    backend = EchoBackend(delay_s=0.02)
    url = serve(backend, queue_size=1, batch_size=1, timeout=0.5)
    for _ in range(4):
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_request(True)) as left:
            lines = left.iter_lines()
            next(lines)
            assert next(line for line in lines if line).startswith("data: ")
        # the response is closed mid-stream: httpx drops the connection
    for _ in range(3):
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_request(True)) as slow:
            assert '"generation_timeout"' in "".join(slow.iter_lines())
        assert httpx.post(f"{url}/v1/chat/completions",
                          json=long_request(False)).status_code == 504
    assert wait_idle(url) == {"running": 0, "waiting": 0, "capacity": 2}
    after = client(url).chat.completions.create(model="doppel/Alex",
                                                messages=[{"role": "user", "content": "hey"}])
    assert after.choices[0].message.content.startswith("hey")
    assert backend.started == 4 + 3 * 2 + 1


@pytest.mark.slow
def test_the_embedded_model_refuses_a_lone_surrogate_and_stays_free(serve, embedded):
    """The real engine's start (recall, the tokenizer) is where the surrogate is found: a server
    with one place answers 400 three times, then a reply."""
    url = serve(embedded, queue_size=0, batch_size=1)
    for stream in (True, False, True):
        refused = post(url, lone_surrogate(stream))
        assert refused.status_code == 400 and "surrogate" in refused.text
    reply = client(url).chat.completions.create(
        model="doppel/Alex", max_tokens=4, messages=[{"role": "user", "content": "hey"}])
    assert reply.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize(("headers", "why"), [
    ({}, "no Content-Type"), ({"Content-Type": "text/plain"}, "a simple request's type"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "a form's"),
])
def test_a_json_body_without_a_json_content_type_is_refused(serve, headers, why):
    """What a web page can send without a CORS preflight (fetch with a Blob body has no type)
    is refused before it reaches the model (FastAPI >= 0.132, doppel's 415)."""
    backend = EchoBackend()
    url = serve(backend)
    body = b'{"model": "doppel/Alex", "messages": [{"role": "user", "content": "hi"}]}'
    refused = httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers)
    assert refused.status_code == 415, why
    assert refused.json()["error"]["code"] == "unsupported_media_type"
    assert post(url, body).status_code == 200 and backend.started == 1


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("LocalHost", True), ("[::1]:8000", True),
    ("[::1]", True), ("127.9.8.7:1", True), ("[::ffff:127.0.0.1]:80", True),
    ("evil.example", False), ("evil.example:8000", False), ("127.0.0.1.evil.example", False),
    ("localhost.evil.example", False), ("192.168.1.10:8000", False), ("[::2]:8000", False),
    ("0.0.0.0:8000", False), ("", False), ("evil.example@127.0.0.1", False),
    ("127.0.0.1:99999", False), ("[::1", False), ("127.0.0.1 evil.example", False),
    ("2130706433", False),
])
def test_which_host_headers_are_this_machine(host, loopback):
    name = host_name(host)
    assert (name is not None and is_loopback(name)) is loopback


def test_a_keyless_server_answers_only_loopback_host_names(serve):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends
    `Host: evil.example`; a keyless server refuses it on every path, the model untouched."""
    backend = EchoBackend()
    url = serve(backend)
    port = url.rsplit(":", 1)[1]
    chat = {"model": "doppel/Alex", "messages": [{"role": "user", "content": "secret?"}]}
    for path in ("/v1/models", "/health", "/"):
        refused = httpx.get(url + path, headers={"Host": "evil.example"})
        assert refused.status_code == 400, path
        assert refused.json()["error"]["code"] == "untrusted_host"
    refused = httpx.post(f"{url}/v1/chat/completions", json=chat,
                         headers={"Host": f"evil.example:{port}"})
    assert refused.status_code == 400 and "--api-key" in refused.json()["error"]["message"]
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:  # HTTP/1.0
        raw.sendall(b"GET /v1/models HTTP/1.0\r\n\r\n")  # may leave Host out
        answer = b"".join(iter(lambda: raw.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400") and b"without a Host header" in answer
    assert backend.started == 0
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{url}/v1/models", headers={"Host": host}).status_code == 200, host
        answered = httpx.post(f"{url}/v1/chat/completions", json=chat, headers={"Host": host})
        assert answered.status_code == 200, host
    keyed = serve(EchoBackend(), api_key="s3cret")  # with a key, the key decides, as before
    assert httpx.get(f"{keyed}/v1/models", headers={
        "Host": "doppel.example", "Authorization": "Bearer s3cret"}).status_code == 200


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


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("temperature", 2.5, "--temperature"), ("repetition_penalty", 11, "--repetition-penalty"),
    ("max_tokens", 5000, "--max-new-tokens"), ("max_completion_tokens", 0, "--max-new-tokens"),
    ("top_p", 0, "--top-p"), ("top_k", -1, "--top-k"),
])
def test_the_api_and_the_cli_take_the_same_sampling_range(serve, field, value, flag, monkeypatch,
                                                           capsys):
    """The request's limits are SamplingParams' own: a value the API refuses, the CLI refuses."""
    url = serve(EchoBackend())
    response = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "doppel/Alex", field: value, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400 and field in response.json()["error"]["param"]
    code, _, err = run_cli(["chat", "RUN", flag, str(value)], monkeypatch, capsys)
    assert code == 2 and err.count(flag) == 1 and "Input should be" in err, err


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

    from doppel import engines

    apps = []
    monkeypatch.setattr(engines, "load_engine", lambda load, *_: EchoBackend())
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
