"""GGUF loading: the gguf package's reader against doppel's FastGGUFReader, side by side.

Usage: python3 bench/gguf_read.py [MODEL ...] [--repeats N]   (embedded names; default both)

For each embedded model, in fresh processes taking turns (so load drifts hit both alike),
prints the CPU seconds of (1) parsing the file's metadata with each reader, (2) transformers'
parse of every field into Python values, and (3) doppel's whole GGUF -> safetensors conversion
(`_convert_into`) with each reader, and checks the two conversions wrote identical weights.
CPU seconds, not wall, because the machine is shared; OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib, json, sys, tempfile, time
from pathlib import Path
import gguf
import doppel.ggufread
from doppel import models
from transformers.integrations.ggml import _gguf_parse_value

model, reader_name = sys.argv[1], sys.argv[2]
reader = gguf.GGUFReader if reader_name == "gguf" else doppel.ggufread.FastGGUFReader
doppel.ggufread.FastGGUFReader = reader  # what gguf_loads_shared builds its one reader with
path = models._embedded_gguf(model)
start = time.process_time()
fields = reader(path).fields
read = time.process_time() - start
start = time.process_time()
for field in fields.values():
    [_gguf_parse_value(field.parts[i], field.types) for i in field.data]
parse = time.process_time() - start
with tempfile.TemporaryDirectory() as folder:
    start = time.process_time()
    models._convert_into(path, Path(folder) / "out")
    convert = time.process_time() - start
    weights = hashlib.sha256((Path(folder) / "out" / "model.safetensors").read_bytes()).hexdigest()
print(json.dumps({"read": read, "parse": parse, "convert": convert, "weights": weights}))
"""


def measure(model: str, reader: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as cache:
        env["DOPPEL_CACHE"] = cache  # the bundled gemma3 file is assembled here from its parts
        done = subprocess.run([sys.executable, "-c", CHILD, model, reader], env=env, check=True,
                              capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print("| model | reader | read s | parse s | convert s |")
    print("|---|---|---|---|---|")
    for model in args.models:
        weights = set()
        for _ in range(args.repeats):
            for reader in ("gguf", "fast"):
                got = measure(model, reader)
                weights.add(got["weights"])
                print(f"| {model} | {reader} | {got['read']:.2f} | {got['parse']:.2f} "
                      f"| {got['convert']:.1f} |", flush=True)
        print(f"{model}: both readers wrote identical weights: {len(weights) == 1}")


if __name__ == "__main__":
    main()
