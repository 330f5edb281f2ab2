"""README.md's commands are tests: every command line in its ```bash blocks runs here, read from
README.md itself, so a documented command cannot break or drift unseen.

Each line of a bash block (continuations joined, comments dropped; a block that starts with `#!`
is one script) is covered in one of two ways:

1. The generic runner (`test_readme_command_runs`) runs every `doppel ...` and `torchrun ...` line
   as typed, in README order, in one temporary folder, so later lines use what earlier ones
   wrote (`doppel` and `torchrun` are this interpreter's `-m doppel` and
   `-m torch.distributed.run`). Before a line runs:
   - PLACEHOLDERS swap what only the user has for tiny stand-ins (their model folder, export);
   - SEEDS create input folders no README line writes (e.g. `out/mine`, the user's dataset);
   - SHRINK appends flags that cut the line to a few steps (only flags the line does not set);
   - `--nproc_per_node N` becomes 2 (this machine has 2 cores);
   - a line whose `-o` folder an earlier line wrote starts afresh (the README shows
     alternatives, e.g. several ways to train `out/mine-run`);
   - the Hugging Face cache (HF_HUB_CACHE) holds the configs, not the weights, of the models the
     GPU recipes name, as a user's cache would hold the models (so `--dry-run` plans for them).
   A line passes when it exits 0 without a traceback.
2. NAMED maps the start of a line to the test that runs it in the user's form elsewhere: what
   is interactive or never ends by itself (chat, serve, bot), what needs a cluster (the Slurm
   script), and the make targets.

`test_every_readme_command_is_covered` fails on a line that is neither, and on a NAMED test that
does not exist. Adding a command to the README: put it in a ```bash block. If it ends by itself,
that is all (plus one PLACEHOLDERS/SEEDS line if it names a file only a user has, or one SHRINK
line if it runs long). If it is interactive or needs hardware, add one NAMED line, e.g.
`"doppel bot ": "tests/test_bot.py::test_bot_answers_in_the_users_form",`.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from builders import run_cli, write_dataset, write_hub_cache, write_tiny_mistral
from doppel.quiet import kernel_noise

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
COMMAND_TIMEOUT_S = 600

# line start -> the test that runs it in the user's form (interactive, never-ending, cluster, make)
NAMED = {
    "doppel chat out/run --me Sam": "tests/test_memory_readme.py::test_readme_memory_chat_lines",
    "doppel serve out/run --data": "tests/test_memory_readme.py::test_readme_memory_serve_line",
    "doppel memory forget ": "tests/test_memory_readme.py::test_readme_memory_forget_lines",
    "make demo": "tests/test_readme.py::test_make_demo_and_make_test_are_the_documented_verbs",
    "make test": "tests/test_readme.py::test_make_demo_and_make_test_are_the_documented_verbs",
    "doppel chat ": "tests/test_qlora.py::test_qlora_on_cpu_trains_then_reloads_for_chat_and_eval",
    "doppel serve --engine llama.cpp": "tests/test_serve_llamacpp.py::"
                                       "test_readme_line_serves_the_embedded_twin_like_the_torch_engine",
    "doppel serve ": "tests/test_readme.py::test_serve_as_the_readme_types_it",
    "#SBATCH": "tests/test_readme.py::test_slurm_script_on_two_local_nodes",
    "doppel prepare out/sample/result.json tests/fixtures/":
        "tests/test_prepare_sources.py::test_readme_commands_for_other_apps_run_as_shown",
    "doppel prepare tests/fixtures/":
        "tests/test_prepare_sources.py::test_readme_commands_for_other_apps_run_as_shown",
    "doppel bot ": "tests/test_bot_readme.py::test_readme_bot_lines_on_the_embedded_model",
    "doppel blindtest out/run --port": "tests/test_blindtest.py::test_readme_serve_line",
    "doppel prepare ChatExport_": "tests/test_voice.py::test_telegram_voice_note_becomes_its_words",
    "doppel eval out/run --data out/dataset -o out/eval-canaries --canaries ":
        "tests/test_canaries.py::test_eval_canaries_through_the_cli_finds_only_the_leak_planted",
    "mkdir -p '~/.config/doppel'": "tests/test_bot_readme.py::test_readme_token_lines",
    "cat '>' '~/.config/doppel/bot-token'": "tests/test_bot_readme.py::test_readme_token_lines",
}
# README "On an offline GPU cluster": a fresh venv with the node's packages, no network
OFFLINE_NODE = "tests/test_offline_node.py::test_readme_offline_steps_on_a_node_without_network"
NAMED |= {"make wheelhouse ": OFFLINE_NODE, "python3 -m pip install --no-index": OFFLINE_NODE,
          "python3 bench/gpu_check.py --offline": OFFLINE_NODE,
          "export 'PYTHONPATH=": OFFLINE_NODE}


def _tiny_mistral(root: Path) -> Path:
    target = root / "stand-ins" / "Mistral-7B-v0.1"
    return target if target.is_dir() else write_tiny_mistral(target)


def _sample_export(root: Path) -> Path:
    from doppel.sample import write_sample_export

    target = root / "stand-ins" / "DataExport_sample"
    return (target if target.is_dir() else write_sample_export(target)) / "result.json"


def _small_dataset(root: Path, relative: str) -> Path:
    return write_dataset(root / relative, conversations=24)


def _messages_db(root: Path) -> Path:
    """A Mac's Messages database stand-in: two chats in the macOS schema (tests/imessage_db)."""
    from imessage_db import MessagesDB

    target = root / "stand-ins" / "chat.db"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        db = MessagesDB(target)
        sam, kim = db.handle("+14155552671"), db.handle("kim@example.com")
        for n, handle in enumerate((sam, kim)):
            chat = db.chat([handle])
            for i in range(6):
                db.message(chat, 1.7e9 + 86400 * n + 60 * i, text=f"message {i}", handle=handle,
                           mine=i % 2 == 1)
        db.close()
    return target


# a token only the user has -> builds the stand-in under the world's root and returns its path
PLACEHOLDERS: dict[str, Callable[[Path], Path]] = {
    "/models/Mistral-7B-v0.1": _tiny_mistral,
    "DataExport_.../result.json": _sample_export,
    "~/Library/Messages/chat.db": _messages_db,
}
# a folder a README line reads but no README line writes -> created when missing
SEEDS: dict[str, Callable[[Path, str], Path]] = {"out/mine": _small_dataset}
# command -> flags that cut it to a few steps (appended unless the line sets them)
SHRINK = {
    "train": {"--max-steps": "2", "--max-length": "128", "--micro-batch-size": "2",
              "--save-steps": "1000"},
    # the preference stage takes no run-shaping flags (it refuses them); 8 pairs: its least
    "train --prefer": {"--max-steps": "2", "--max-length": "128", "--prefer-pairs": "8"},
    "eval": {"--quick": None, "--max-contexts": "2", "--max-new-tokens": "4",
             "--top-speakers": "1", "--no-transcripts": None, "--ppl-max-tokens": "300",
             "--fact-turns": "4"},
    "blindtest": {"--items": "2", "--max-new-tokens": "4"},
}


@dataclass(frozen=True)
class ReadmeCommand:
    text: str  # as in the README (one line, or a whole script)
    words: tuple[str, ...]  # shell words of a line; empty for a script

    @property
    def script(self) -> bool:
        return not self.words

    @property
    def generic(self) -> bool:
        return not self.script and self.words[0] in ("doppel", "torchrun") and self.named is None

    @property
    def named(self) -> str | None:
        return next((test for start, test in NAMED.items() if self._matches(start)), None)

    def _matches(self, start: str) -> bool:
        return start in self.text if self.script else self.text.startswith(start)

    @property
    def doppel_args(self) -> list[str]:
        """The words after `doppel` (or after torchrun's `-m doppel`)."""
        words = list(self.words)
        if words[0] == "torchrun":
            words = words[words.index("-m") + 1 :]
        return words[1:]


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def readme_commands() -> list[ReadmeCommand]:
    commands = []
    for block in bash_blocks():
        if block.startswith("#!"):
            commands.append(ReadmeCommand(block.strip(), ()))
            continue
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(ReadmeCommand(shlex.join(words), tuple(words)))
    return commands


COMMANDS = readme_commands()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_CACHE": str(root / "hub"), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}


class ReadmeWorld:
    """A user's folder in which the README's runnable lines run in order, each once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results: dict[int, subprocess.CompletedProcess] = {}
        write_hub_cache(root / "hub")

    def result(self, index: int) -> subprocess.CompletedProcess:
        for i in range(index + 1):
            if COMMANDS[i].generic and i not in self.results:
                self.results[i] = self._run(COMMANDS[i])
        return self.results[index]

    def argv(self, command: ReadmeCommand) -> list[str]:
        words = [str(PLACEHOLDERS[w](self.root)) if w in PLACEHOLDERS else w for w in command.words]
        for seed, build in SEEDS.items():
            if seed in words and not (self.root / seed).exists():
                build(self.root, seed)
        name = command.doppel_args[0]
        name += " --prefer" if name == "train" and "--prefer" in words else ""
        if "--dry-run" not in words:
            for flag, value in SHRINK.get(name, {}).items():
                if flag not in words:
                    words += [flag] if value is None else [flag, value]
        if words[0] == "torchrun":
            at = words.index("--nproc_per_node")
            words[at + 1] = "2"
            return [sys.executable, "-m", "torch.distributed.run", *words[1:]]
        return [sys.executable, "-m", "doppel", *words[1:]]

    def _run(self, command: ReadmeCommand) -> subprocess.CompletedProcess:
        argv = self.argv(command)
        for flag in ("-o", "--output"):
            if flag in argv and (self.root / argv[argv.index(flag) + 1]).exists():
                shutil.rmtree(self.root / argv[argv.index(flag) + 1])
        return subprocess.run(argv, cwd=self.root, env=_env(self.root), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT_S)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> ReadmeWorld:
    return ReadmeWorld(tmp_path_factory.mktemp("readme-user"))


def test_readme_shows_the_two_commands_and_the_five_steps():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    shown = {c.doppel_args[0] for c in COMMANDS if not c.script and c.words[0] != "make"}
    assert {"sample-export", "prepare", "train", "chat", "serve", "eval"} <= shown


def _test_exists(reference: str) -> bool:
    path, name = reference.split("::")
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.text.splitlines()[0][:60])
def test_every_readme_command_is_covered(command):
    assert command.generic or command.named, (
        f"README command {command.text!r} is neither run by test_readme_command_runs nor "
        "mapped to a test in NAMED (see this file's docstring)"
    )
    if command.named:
        assert _test_exists(command.named), f"NAMED points at a missing test: {command.named}"


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if not c.script and c.words[0] in ("doppel", "torchrun")],
    ids=lambda c: c.text[:60],
)
def test_every_readme_command_and_flag_exists(command, monkeypatch, capsys):
    args = command.doppel_args
    code, out, err = run_cli([args[0], "--help"], monkeypatch, capsys)
    assert code == 0, err
    for flag in (arg.split("=")[0] for arg in args if arg.startswith("--")):
        assert flag in out, f"{flag} is not an option of doppel {args[0]}"


GENERIC = [i for i, c in enumerate(COMMANDS) if c.generic]


@pytest.mark.slow
@pytest.mark.parametrize("index", GENERIC, ids=[COMMANDS[i].text[:70] for i in GENERIC])
def test_readme_command_runs(world, index):
    done = world.result(index)
    assert done.returncode == 0, f"{COMMANDS[index].text}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert kernel_noise(done.stdout + done.stderr) == []  # issue 19: quiet, true output
    if "--dry-run" in COMMANDS[index].words:
        assert "memory per device" in done.stdout


def test_make_demo_and_make_test_are_the_documented_verbs():
    """`make demo` runs `doppel demo` (test_demo runs it, quick); `make test` is this suite."""
    made = subprocess.run(["make", "-n", "-W", "pyproject.toml", "demo", "test"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert re.search(r"doppel demo -o \S+ --force", made.stdout)
    assert "ruff check src tests bench" in made.stdout and "-m pytest" in made.stdout


@pytest.mark.slow
def test_serve_as_the_readme_types_it(tiny_run_dir):
    """`doppel serve RUN`: the API answers, then the server stops on SIGINT like Ctrl-C."""
    import httpx

    (line,) = [c for c in COMMANDS if c.text.startswith("doppel serve ")
               and "--engine" not in c.words and "--data" not in c.words]
    port = _free_port()
    argv = [sys.executable, "-m", "doppel", "serve", str(tiny_run_dir), "--port", str(port)]
    assert line.words[3:] == (), "the README's serve line takes options this test does not pass"
    with served(argv, port, env=_env(tiny_run_dir)) as base:
        models = httpx.get(f"{base}/v1/models", timeout=10).json()
        persona = models["data"][0]["id"]
        reply = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
            "model": persona, "max_tokens": 4,
            "messages": [{"role": "user", "name": "Sam", "content": "hey"}]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["role"] == "assistant"
        rebound = httpx.get(f"{base}/v1/models", timeout=10, headers={"Host": "evil.example"})
        assert rebound.status_code == 400  # keyless: a page on another name reads nothing


@contextlib.contextmanager
def served(argv: list[str], port: int, **popen):
    """A `doppel serve` process: yields its base URL once /health answers, then stops it with
    SIGINT as Ctrl-C does."""
    import httpx

    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              **popen)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1][-3000:]
            time.sleep(0.2)
        yield base
    finally:
        server.send_signal(2)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


FAKE_SRUN = """#!/bin/bash
# Slurm's srun on one machine: the command once per node, in parallel; the worst exit code
pids=()
for node in $(seq 0 $((SLURM_NNODES - 1))); do SLURM_NODEID=$node "$@" & pids+=($!); done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
"""
FAKE_SCONTROL = '#!/bin/bash\n# `scontrol show hostnames LIST`\ntr "," "\\n" <<< "$3"\n'


@pytest.mark.slow
def test_slurm_script_on_two_local_nodes(tmp_path):
    """The README's Slurm script, as written, on two "nodes" of this machine: srun starts one
    torchrun per node (c10d rendezvous on 127.0.0.1, gloo), one process each."""
    (script,) = [c for c in COMMANDS if c.script and "#SBATCH" in c.text]
    text = script.text.replace("\\\n", " ").replace("--nproc_per_node 8", "--nproc_per_node 1")
    text = text.replace(":29500", f":{_free_port()}")
    for token, build in PLACEHOLDERS.items():
        if token in text:
            text = text.replace(token, str(build(tmp_path)))
    shrink = " ".join(f"{flag} {value}" for flag, value in SHRINK["train"].items())
    text = re.sub(r"(-m doppel train .*)", rf"\1 {shrink}", text)
    for seed, build in SEEDS.items():
        if f" {seed} " in text:
            build(tmp_path, seed)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {"srun": FAKE_SRUN, "scontrol": FAKE_SCONTROL,
             "torchrun": f'#!/bin/bash\nexec {sys.executable} -m torch.distributed.run "$@"\n'}
    for name, body in fakes.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "job.sh").write_text(text)
    env = {**_env(tmp_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "127.0.0.1,127.0.0.1",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "job.sh"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    run = tmp_path / re.search(r" -o (\S+)", text).group(1)
    summary = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert (run / "model" / "model.safetensors").is_file()
