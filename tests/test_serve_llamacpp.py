"""`doppel serve --engine llama.cpp`: a GGUF from `doppel export` behind the same API, with doppel's
prompt ids, stops, sampling settings and exact usage; greedy replies equal the torch engine's."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

import test_server
from builders import run_cli
from doppel.infer.engine import Engine, SamplingParams
from doppel.infer.server import REPLY_SEP, run_in_thread
from export_models import HISTORY, agreement, decided, greedy_steps, needs_llama_cpp
from test_server import client

pytestmark = needs_llama_cpp
serve = test_server.serve  # the fixture: serve(backend, **ApiOptions) -> URL
GREEDY = SamplingParams(temperature=0, repetition_penalty=1.0, max_new_tokens=16)
CHAT = [{"role": "user", "name": speaker, "content": text} for speaker, text in HISTORY]
TINY_LLAMA_CPP_TOLERANCE = 5e-3  # llama.cpp's f16 KV cache (tests/test_export.py)


@pytest.fixture(scope="module")
def gguf(tiny_run_dir, tmp_path_factory) -> Path:
    """The tiny run exported as `doppel export` writes it (f32: equal to the run up to rounding)."""
    from doppel.export.pipeline import ExportOptions, export_run

    out = tmp_path_factory.mktemp("gguf") / "twin.gguf"
    export_run(tiny_run_dir, out, ExportOptions(dtype="f32", progress=False))
    return out


@pytest.fixture(scope="module")
def llama(gguf):
    from doppel.engines import load_llama

    engine = load_llama(str(gguf), threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def torch_engine(tiny_run_dir):
    import torch

    return Engine.load(tiny_run_dir, merge=True, dtype=torch.float32)


def test_personas_and_prompt_ids_come_from_the_run(llama, torch_engine):
    """The GGUF alone knows whom it plays (metadata written by doppel export) and renders the
    same prompt ids as the torch engine (the tokenizer inside the file)."""
    assert llama.personas == torch_engine.personas == ["Alex", "Sam"]
    assert llama.default_persona == "Alex" and llama.default_partner("Alex") == "Sam"
    assert llama.max_length == torch_engine.max_length
    assert llama.prompt_ids(HISTORY, "Alex", 16) == torch_engine.prompt_ids(HISTORY, "Alex", 16)


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_greedy_tokens_equal_the_torch_engine(llama, torch_engine, penalty):
    """Greedy ids agree up to the first near-tie; the repetition penalty counts the prompt's
    tokens too, as transformers' does (llama-cpp-python's own counts only the last 64 made)."""
    params = GREEDY.replace(repetition_penalty=penalty)
    prompt = torch_engine.prompt_ids(HISTORY, "Alex", params.max_new_tokens)
    ours = list(llama.tokens(prompt, params))
    if penalty == 1.0:
        expected, margins = greedy_steps(torch_engine.model, prompt, len(ours))
        assert agreement(ours, expected) >= decided(margins, TINY_LLAMA_CPP_TOLERANCE)
    else:
        torch_engine.stop_ids, stops = [], torch_engine.stop_ids  # compare whole replies
        try:
            expected = torch_engine.reply(HISTORY, "Alex", params)
        finally:
            torch_engine.stop_ids = stops
        assert llama.reply(HISTORY, "Alex", params) == expected


def test_seeded_sampling_is_reproducible(llama, torch_engine):
    params = SamplingParams(temperature=0.9, top_p=0.9, top_k=20, max_new_tokens=12, seed=7)
    prompt = torch_engine.prompt_ids(HISTORY, "Alex", 12)
    first = list(llama.tokens(prompt, params))
    assert list(llama.tokens(prompt, params)) == first
    assert list(llama.tokens(prompt, params.replace(seed=8))) != first


def test_openai_client_through_the_cli_streaming_and_not(gguf, torch_engine, monkeypatch, capsys):
    """`doppel serve --engine llama.cpp GGUF --port 0` (the app it builds, served here): replies
    equal the torch engine's, usage is exact, include_usage streams it."""
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: apps.append(app))
    code, _, err = run_cli(["serve", "--engine", "llama.cpp", str(gguf), "--port", "0",
                            "--threads", "1"], monkeypatch, capsys)
    assert code == 0, err
    assert "personas: Alex, Sam" in err
    server, url = run_in_thread(apps[0])
    try:
        assert apps[0].state.scheduler.backend.llm.n_threads == 1
        expected = [d for d in torch_engine.stream(HISTORY, "Alex", GREEDY)]
        usage = expected[-1]
        text = REPLY_SEP.join(torch_engine.reply(HISTORY, "Alex", GREEDY))
        whole = client(url).chat.completions.create(
            model="doppel/Alex", messages=CHAT, max_tokens=16, temperature=0,
            extra_body={"repetition_penalty": 1.0})
        assert whole.choices[0].message.content == text
        assert whole.choices[0].finish_reason == usage.finish_reason
        assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (
            usage.prompt_tokens, usage.completion_tokens)
        assert whole.usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        chunks = list(client(url).chat.completions.create(
            model="doppel/Alex", messages=CHAT, max_tokens=16, temperature=0, stream=True,
            stream_options={"include_usage": True}, extra_body={"repetition_penalty": 1.0}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
        assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
        assert len(chunks) > 4  # it streamed piece by piece
        models = httpx.get(f"{url}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["doppel/Alex", "doppel/Sam"]
    finally:
        server.should_exit = True
        apps[0].state.scheduler.backend.close()


def test_one_at_a_time_a_full_queue_503_and_a_disconnect_frees_it(llama, serve, monkeypatch):
    """Capacity is one running plus the queue; a client that hangs up stops its generation
    within a token and the next request runs."""
    url = serve(llama, queue_size=0)
    assert httpx.get(f"{url}/health").json()["queue"]["capacity"] == 1
    body = {"model": "doppel/Alex", "messages": CHAT, "max_tokens": 200, "stream": True,
            "temperature": 0, "repetition_penalty": 1.0}
    evaluate = llama.llm.eval

    def slowly(tokens):  # 200 tokens take 4 s or more: time to see where it stops
        time.sleep(0.02)
        return evaluate(tokens)

    monkeypatch.setattr(llama.llm, "eval", slowly)
    monkeypatch.setattr(llama, "stop_ids", [])  # never hand over: only the disconnect stops it
    prompt = len(llama.prompt_ids(HISTORY, "Alex", 200))
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as reply:
        lines = reply.iter_lines()  # held: a dropped iterator closes the connection
        while '"content": ""' in (line := next(lines)) or '"content": "' not in line:
            pass
        busy = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": False})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "queue_full"
    assert _settled(llama) < prompt + 50  # stopped long before its 200 tokens
    assert httpx.get(f"{url}/health").json()["queue"]["running"] == 0
    lone = json.dumps({**body, "messages": [{"role": "user", "content": "hi \ud800"}]})
    for _ in range(3):  # text the tokenizer refuses: 400 before it queues, its place given back
        refused = httpx.post(f"{url}/v1/chat/completions", content=lone,
                             headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and "lone surrogate" in refused.text
    after = client(url).chat.completions.create(model="doppel/Alex", messages=CHAT, max_tokens=3)
    assert after.usage.completion_tokens == 3


def _settled(llama) -> int:
    """The context's token count once it stops changing (the generation has stopped)."""
    before = -1
    for _ in range(50):
        time.sleep(0.2)
        if llama.llm.n_tokens == before:
            return before
        before = llama.llm.n_tokens
    raise AssertionError("the generation did not stop after the client left")


def test_a_run_folder_is_exported_once_next_to_it(tiny_run_dir, tmp_path):
    from doppel.engines import load_llama

    run = Path(shutil.copytree(tiny_run_dir, tmp_path / "run"))
    engine = load_llama(str(run), threads=1)
    cached = tmp_path / "run.llama.cpp" / "model.gguf"
    assert cached.is_file() and sorted(p.name for p in run.iterdir()) == sorted(
        p.name for p in tiny_run_dir.iterdir())  # nothing written inside the run folder
    assert engine.personas == ["Alex", "Sam"]
    stamp = cached.stat().st_mtime_ns
    load_llama(str(run), threads=1)
    assert cached.stat().st_mtime_ns == stamp  # reused
    time.sleep(0.01)
    (run / "run.json").touch()
    load_llama(str(run), threads=1)
    assert cached.stat().st_mtime_ns > stamp  # the run changed: exported again


def test_chat_script_on_llama_cpp(gguf, torch_engine, tmp_path, monkeypatch, capsys):
    script = tmp_path / "script.txt"
    script.write_text("hey\n", encoding="utf-8")
    code, out, err = run_cli(["chat", "--engine", "llama.cpp", str(gguf), "--script", str(script),
                              "--temperature", "0", "--repetition-penalty", "1",
                              "--max-new-tokens", "8"], monkeypatch, capsys)
    assert code == 0, err
    params = GREEDY.replace(max_new_tokens=8)
    for message in torch_engine.reply([("Sam", "hey")], "Alex", params):
        assert message.strip() in out


def _fails(args, monkeypatch, capsys, message: str) -> None:
    code, _, err = run_cli(["serve", "--engine", "llama.cpp", *map(str, args)], monkeypatch,
                             capsys)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_paths_get_one_line_and_exit_2(gguf, tmp_path, monkeypatch, capsys):
    from doppel.models import _embedded_gguf

    _fails([tmp_path / "nowhere.gguf"], monkeypatch, capsys, "does not exist")
    _fails([tmp_path / "nowhere.gguf", "--threads", "0"], monkeypatch, capsys, "--threads 0")
    (tmp_path / "empty").mkdir()
    _fails([tmp_path / "empty"], monkeypatch, capsys, "holds no .gguf file")
    (tmp_path / "notes.txt").write_text("hi")
    _fails([tmp_path / "notes.txt"], monkeypatch, capsys, "is not a .gguf file")
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf at all")
    _fails([tmp_path / "broken.gguf"], monkeypatch, capsys, "is not a readable GGUF file")
    _fails([_embedded_gguf("smollm2-135m")], monkeypatch, capsys,
           "was not written by `doppel export`")
    cut = tmp_path / "cut.gguf"  # doppel's metadata, half its weights
    cut.write_bytes(gguf.read_bytes()[: gguf.stat().st_size // 2])
    _fails([cut], monkeypatch, capsys, f"{cut}")


def test_missing_llama_cpp_names_the_extra(gguf, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    _fails([gguf], monkeypatch, capsys, "pip install 'doppel[llama]'")


@pytest.mark.slow
def test_readme_line_serves_the_embedded_twin_like_the_torch_engine(embedded_twin,
                                                                    embedded_twin_gguf, tmp_path):
    """The README's `doppel serve --engine llama.cpp out/twin.gguf` as typed, in a process of its
    own, on an f16 export of a LoRA run on the embedded SmolLM2: greedy replies (real stops,
    several messages) equal the torch engine's, streaming and not."""
    import torch

    from test_readme import COMMANDS, _env, _free_port, served

    (line,) = [c for c in COMMANDS if c.text.startswith("doppel serve --engine llama.cpp")]
    assert line.words[2:] == ("--engine", "llama.cpp", "out/twin.gguf")
    (tmp_path / "out").mkdir()
    os.link(embedded_twin_gguf, tmp_path / "out" / "twin.gguf")  # the session's export, as is
    engine = Engine.load(embedded_twin, merge=True, dtype=torch.float32)
    params = SamplingParams(temperature=0, repetition_penalty=1.0, max_new_tokens=48)
    histories = ([("Sam", "hey")], HISTORY)
    expected = [REPLY_SEP.join(engine.reply(h, "Alex", params)) for h in histories]
    del engine  # before the server starts: the two never compete for the cores
    port = _free_port()
    argv = [sys.executable, "-m", "doppel", *line.words[1:], "--port", str(port)]
    with served(argv, port, cwd=tmp_path, env=_env(tmp_path)) as url:
        # a loaded machine slows llama.cpp's threads a lot (they wait for each other)
        api = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
        for history, reply in zip(histories, expected, strict=True):
            messages = [{"role": "user", "name": s, "content": t} for s, t in history]
            ask = dict(model="doppel/Alex", messages=messages, max_tokens=48, temperature=0,
                       extra_body={"repetition_penalty": 1.0})
            assert api.chat.completions.create(**ask).choices[0].message.content == reply
            chunks = api.chat.completions.create(**ask, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply
