"""Generation speed on this machine: time to first token and tokens/s for the embedded model (base,
fp32 vs bf16; a LoRA run with the adapter applied vs merged), batched replies, and the server's
throughput with 1 and 8 concurrent streaming clients. Prints a table and writes it under
"## generate" in docs/benchmarks.md.

Usage: .venv/bin/python bench/generate.py [--tokens 48] [--threads N] [--no-write] [--server-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchdocs import write_block
from doppel.infer.engine import Engine, SamplingParams
from doppel.infer.server import create_app, run_in_thread
from doppel.runs import ADAPTER_DIR, RUN_INFO, TOKENIZER_DIR, RunInfo

HISTORY = [("Sam", "hey"), ("Alex", "heyy"), ("Sam", "what's up? how was the trip to the lake?")]


def timed_stream(engine: Engine, tokens: int, repeats: int = 3) -> tuple[float, float, float]:
    """Medians of (time to first visible text, tokens/s, tokens per CPU-second), greedy."""
    engine.stop_ids = []  # never hand over early: every run generates the same number of tokens
    params = SamplingParams(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    # warm-up: the first pass pages the weights in and sets up thread pools (3-5x slower here)
    engine.reply(HISTORY, "Alex", params)
    firsts, rates, cpu_rates = [], [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        first, made = None, 0
        for delta in engine.stream(HISTORY, "Alex", params):
            if delta.text and first is None:
                first = time.perf_counter() - start
            made = delta.completion_tokens or made
        firsts.append(first if first is not None else float("nan"))
        rates.append(made / (time.perf_counter() - start))
        cpu_rates.append(made / (time.process_time() - cpu))
    return statistics.median(firsts), statistics.median(rates), statistics.median(cpu_rates)


def lora_run(folder: Path) -> Path:
    """A LoRA run on the embedded model (r=16, all linear layers, non-zero random adapter)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from doppel.models import load_model, load_tokenizer, resolve_model

    base = resolve_model("smollm2-135m")
    tokenizer = load_tokenizer(base)
    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(load_model(base, tokenizer), config)
    model.save_pretrained(folder / ADAPTER_DIR)
    tokenizer.save_pretrained(folder / TOKENIZER_DIR)
    info = RunInfo(base_model="smollm2-135m", method="lora", me={"id": "u1", "name": "Alex"},
                   speakers=["Alex", "Sam"], trained_speakers=["Alex"], max_length=1024)
    (folder / RUN_INFO).write_text(json.dumps(info.to_json()), encoding="utf-8")
    return folder


def batched(engine: Engine, tokens: int, batch: int = 8) -> tuple[float, float]:
    """Tokens/s and tokens per CPU-second of reply_batch over `batch` histories."""
    engine.stop_ids = []
    params = SamplingParams(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    histories = [[*HISTORY[:-1], ("Sam", f"{HISTORY[-1][1]} ({i})")] for i in range(batch)]
    engine.reply_batch(histories[:2], ["Alex"] * 2, params, batch_size=2)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    engine.reply_batch(histories, ["Alex"] * batch, params, batch_size=batch)
    made = batch * tokens
    return made / (time.perf_counter() - start), made / (time.process_time() - cpu)


def server_throughput(engine: Engine, clients: int, tokens: int) -> tuple[float, float, float]:
    """(median time to first content, total tokens/s, per CPU-second) for concurrent streams."""
    engine.stop_ids = []
    server, url = run_in_thread(create_app(engine, queue_size=clients))
    body = {"model": "doppel/Alex", "stream": True, "max_tokens": tokens, "temperature": 0,
            "repetition_penalty": 1.0,
            "messages": [{"role": "user", "name": n, "content": t} for n, t in HISTORY]}
    firsts: list[float] = []
    produced: list[int] = []

    def client() -> None:
        start = time.perf_counter()
        first = None
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as reply:
            for line in reply.iter_lines():
                content = '"content": "' in line and '"content": ""' not in line
                if first is None and line.startswith("data: {") and content:
                    first = time.perf_counter() - start
        firsts.append(first or float("nan"))
        produced.append(tokens)

    start, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    server.should_exit = True
    return statistics.median(firsts), sum(produced) / wall, sum(produced) / cpu


def server_rows(row, tokens: int, engine: Engine | None = None) -> None:
    """1 then 8 concurrent streaming clients against one continuously batching server, in float32
    and (where the CPU has it) bfloat16, the precision `doppel serve` picks by default."""
    import torch

    from doppel.hardware import torch_dtype

    engines = [("float32", engine or Engine.load("smollm2-135m"))]
    if torch_dtype("auto") == torch.bfloat16:
        engines.append(("bfloat16", Engine.load("smollm2-135m", dtype=torch.bfloat16)))
    for name, model in engines:
        server_throughput(model, 1, 4)  # warm-up
        for clients in (1, 8):
            row(f"server, {name}, {clients} concurrent streaming client(s)",
                *server_throughput(model, clients, tokens))
        model.batcher().close()


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                 if line.startswith("Model name")), "unknown CPU")
    flags = next((line for line in out.splitlines() if line.startswith("Flags")), "")
    extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return f"{name}, {os.cpu_count()} cores" + (f" ({', '.join(extras)})" if extras else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=48, help="tokens per reply")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--server-only", action="store_true",
                        help="only the server rows: 1 vs 8 concurrent clients, side by side")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    rows: list[tuple[str, ...]] = []

    def row(what: str, first: float | None, rate: float, cpu_rate: float) -> None:
        rows.append((what, "-" if first is None else f"{first * 1000:.0f} ms", f"{rate:.1f}",
                     f"{cpu_rate:.1f}"))
        print(f"{what:<56} {rows[-1][1]:>9} {rate:7.1f} tok/s {cpu_rate:7.1f} tok/CPU-s",
              flush=True)

    n = args.tokens
    if args.server_only:
        server_rows(row, n)
        print(f"load average {os.getloadavg()[0]:.1f}")
        return
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        engine = Engine.load("smollm2-135m", dtype=dtype)
        row(f"base smollm2-135m, {name}, stream", *timed_stream(engine, n))
    with tempfile.TemporaryDirectory() as tmp:
        run = lora_run(Path(tmp) / "run")
        for merge in (False, True):
            how = "merged" if merge else "adapter applied"
            for dtype in (torch.float32, torch.bfloat16):
                name = str(dtype).removeprefix("torch.")
                engine = Engine.load(run, merge=merge, dtype=dtype)
                row(f"LoRA r=16 run, {how}, {name}, stream", *timed_stream(engine, n))
    engine = Engine.load("smollm2-135m")
    row("base, float32, reply_batch of 8 (eval path)", None, *batched(engine, n))
    server_rows(row, n, engine)

    load = os.getloadavg()[0]
    table = "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
    markdown = (
        f"`bench/generate.py --tokens {n}` on {cpu_model()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {load:.1f} when it finished (other "
        "jobs on the machine slow every row alike). Greedy, {n} new tokens per reply, stops "
        "ignored so every row generates the same count; time to first token includes the prompt "
        f"({len(HISTORY)} messages). Server rows: continuous batching, so 8 clients decode in one "
        "batch (first-token time is the median over clients). "
        "Tokens per CPU-second (this process's CPU time, all threads) moves less with the "
        "machine's load than tokens/s does.\n\n"
        "| what | first token | tokens/s | tokens per CPU-s |\n|---|---:|---:|---:|\n"
        + table + "\n"
    ).replace("{n}", str(n))
    print()
    print(markdown)
    if not args.no_write:
        write_block("## generate", "generate.py", markdown)


if __name__ == "__main__":
    main()
