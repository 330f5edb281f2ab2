"""Soak and abuse against a live loopback server, bounded in count and time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import pytest

SERVER = """
import sys, time
from doppel.infer.echo import EchoBackend
from doppel.infer.options import ApiOptions
from doppel.infer.server import create_app, run_in_thread
server, url = run_in_thread(create_app(EchoBackend(delay_s=0.002),
                                               ApiOptions(queue_size=8, batch_size=8)))
print(url, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def server_process():
    """A live Echo server in its own process, so its memory is measured apart from the clients."""
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        yield process, process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def rss_kib(pid: int) -> int:
    fields = Path(f"/proc/{pid}/status").read_text().split("\n")
    return int(next(f for f in fields if f.startswith("VmRSS:")).split()[1])


def chat(content: str, stream: bool = False, max_tokens: int = 64) -> dict:
    return {"model": "doppel/Alex", "stream": stream, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}]}


def soak_round(url: str, worker: int, rounds: int, failures: list[str]) -> None:
    api = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    for round_ in range(rounds):
        try:
            if (worker + round_) % 5 == 4:  # hang up mid-stream
                with httpx.stream("POST", f"{url}/v1/chat/completions",
                                  json=chat("leaving " * 40, stream=True)) as reply:
                    next(reply.iter_lines())
                continue
            chunks = api.chat.completions.create(**chat(f"hi {worker} {round_}", stream=True),
                                                 stream_options={"include_usage": True})
            chunks = list(chunks)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            if not text.startswith(f"hi {worker} {round_}") or not chunks[-1].usage:
                failures.append(f"{worker}/{round_}: {text!r}")
        except Exception as error:
            failures.append(f"{worker}/{round_}: {error!r}")


async def burst(url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as session:
        replies = await asyncio.gather(*[
            session.post(f"{url}/v1/chat/completions", json=chat("burst " * 20))
            for _ in range(count)])
    return [reply.status_code for reply in replies]


def clients(url: str, rounds: int, failures: list[str]) -> None:
    threads = [threading.Thread(target=soak_round, args=(url, n, rounds, failures))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc")
def test_eight_clients_soak_disconnects_and_a_burst_keep_the_server_up(server_process):
    process, url = server_process
    failures: list[str] = []
    clients(url, 2, failures)  # warm-up: every code path once, a burst included
    asyncio.run(burst(url, 200))
    warm = rss_kib(process.pid)
    clients(url, 20, failures)
    assert failures == []
    statuses = asyncio.run(burst(url, 200))
    assert set(statuses) <= {200, 503} and statuses.count(503) > 0
    assert statuses.count(200) >= 16  # the batch and the queue were all served
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok"
    assert soak_round(url, 9, 1, failures) is None and failures == []
    assert process.poll() is None
    assert rss_kib(process.pid) <= warm * 1.10
