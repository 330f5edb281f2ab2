"""The fuzz harness: mutate real exports and check that `doppel prepare` either writes a valid
dataset folder or exits 2 with one line and no output; never a traceback, a hang or a runaway.

SEEDS maps each source to its seed files (and the --me that makes them preparable): a new reader
is fuzzed by adding its line. Mutations work on bytes (truncate, flip, insert, delete, duplicate,
re-encode) and, for JSON seeds, on the parsed tree (drop or retype a field, huge strings, deep
nesting, duplicate items); zip-capable sources are also tried inside a zip, whole or cut.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
SHARED = HERE.resolve().parents[1] / "shared" / "fixtures"
# a case using more CPU time than this is a hang (CPU time: the machine may be shared and slow);
# one waiting longer than CASE_WALL_SECONDS on something else is stuck
CASE_SECONDS = 20
CASE_WALL_SECONDS = 300
CASE_MEGABYTES = 1000  # a case that raises the process's peak memory by more is a runaway
REGRESSIONS = FIXTURES / "fuzz"


@dataclass(frozen=True)
class Seed:
    path: Path
    me: str | None = None
    zip_member: str | None = None  # the name the file has inside a zip export, if it can be one


def _shared(folder: str, pattern: str, me: str | None = None) -> list[Seed]:
    return [Seed(p, me) for p in sorted((SHARED / folder).glob(pattern))]


def seeds(sample: Path | None = None) -> dict[str, list[Seed]]:
    """source -> its seed files; `sample` is a small Telegram export cut from the sample."""
    telegram = _shared("telegram", "*.json", "user300000000")
    if sample is not None:
        telegram.append(Seed(sample))
    return {
        "telegram": telegram,
        "whatsapp": [Seed(p, "Alex", "_chat.txt") for p in sorted(
            (FIXTURES / "whatsapp").glob("*.txt"))] + _shared("whatsapp", "*.txt", "John Doe"),
        "signal": _shared("signal", "*.txt", "Jane Doe"),
        "discord": [Seed(p, "Alex") for p in sorted((FIXTURES / "discord").glob("*.json"))],
        "meta": [Seed(p, "Alex Doe", "messages/inbox/x_1/message_1.json")
                 for p in sorted((FIXTURES / "meta").rglob("*.json"))]
        + _shared("instagram", "*.json", "John Doe"),
        "imessage": _shared("imessage", "*.db") + _built_messages_db(sample),
        "chatlab": [Seed(p, None if p.suffix == ".json" else "Alex")
                    for p in sorted((FIXTURES / "chatlab").glob("*.json*"))],
        "line": [Seed(p, "Alex") for p in sorted((FIXTURES / "line").glob("*.txt"))],
        "kakaotalk": [Seed(p, "Alex") for p in sorted((FIXTURES / "kakaotalk").glob("*"))],
    }


def _built_messages_db(sample: Path | None) -> list[Seed]:
    """A Messages database with what the real ones lack (chats, a group, edits, attachments,
    a voice message), built next to the sample seed."""
    if sample is None:
        return []
    from imessage_db import MessagesDB

    path = sample.parent / "chat.db"
    if not path.exists():
        db = MessagesDB(path)
        sam, kim = db.handle("+14155552671"), db.handle("kim@example.com")
        one, group = db.chat([sam]), db.chat([sam, kim], name="Book club")
        for n in range(12):
            db.message(one, 1.7e9 + 60 * n, text=f"message {n} to Sam", mine=n % 2 == 0,
                       handle=sam)
        db.message(one, 1.7e9 + 900, body="a" * 200, handle=sam)
        db.message(one, 1.7e9 + 960, text="\ufffc", mine=True, audio=True,
                   files=[("audio/x-caf", "~/Library/Messages/Attachments/a/b/Audio.caf")])
        db.message(group, 1.7e9 + 2000, text="hi all", handle=kim, edits=["hi al", "hi all"])
        db.message(group, 1.7e9 + 2060, text="hey", mine=True)
        db.message(group, 1.7e9 + 2070, text="Loved “hey”", handle=kim, reaction=2001)
        db.close()
    return [Seed(path)]


def small_sample(folder: Path, messages_per_chat: int = 40) -> Path:
    """The bundled sample export, cut to a few messages a chat (a fast seed that still has the
    full-export layout, an owner and every kind of message the sample holds)."""
    from doppel.sample.generator import write_sample_export

    export = write_sample_export(folder / "sample", seed=0)
    data = json.loads(export.read_text(encoding="utf-8"))
    for chat in data["chats"]["list"]:
        chat["messages"] = chat["messages"][:messages_per_chat]
    small = folder / "small-sample.json"
    small.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return small


# -- mutations --------------------------------------------------------------------------------
INSERTS = [b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\\ud800",
           b"\\u0000", b"\r\n", b"\n", b'"', b"{", b"]", b",", b"\\x1f", b"a" * 300_000,
           b"[" * 3000, "\u200e\u202f\u2068".encode(), b"\n12/03/2024, 10:15 - X: y\n",
           b"\n[2024-01-01, 10:00] X: y\n"]
ENCODINGS = ["utf-16", "cp1251", "latin-1", "utf-8-sig"]
ODD_VALUES: list[Any] = [None, 0, -1, 2**70, 1.5, True, "", "x" * 100_000, [], {}, [None],
                         {"a": None}, "\ud800", "2024-13-45T99:99:99"]


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One mutation of raw bytes."""
    size = max(len(data), 1)
    at = draw(st.integers(0, size))
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate",
                                 "encode", "random"]))
    if kind == "truncate":
        return data[:at]
    if kind == "flip" and data:
        spot = min(at, len(data) - 1)
        return data[:spot] + bytes([data[spot] ^ draw(st.integers(1, 255))]) + data[spot + 1:]
    if kind == "insert":
        piece = draw(st.sampled_from(INSERTS))
        return data[:at] + piece + data[at:]
    if kind in ("delete", "duplicate"):
        end = min(size, at + draw(st.integers(1, 400)))
        if kind == "delete":
            return data[:at] + data[end:]
        return data[:end] + data[at:end] + data[end:]
    if kind == "encode":
        text = data.decode("utf-8", errors="replace")
        return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    return data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:30]):
            out += _paths(value, (*path, index))
    return out


@st.composite
def tree_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Drop, retype or duplicate one node of a JSON seed; written back indented like the apps."""
    try:
        tree = json.loads(data)
    except ValueError:
        return data
    paths = [p for p in _paths(tree) if p]
    if not paths:
        return data
    path = draw(st.sampled_from(paths))
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    kind = draw(st.sampled_from(["drop", "retype", "duplicate", "nest"]))
    if kind == "drop":
        del parent[last]
    elif kind == "duplicate" and isinstance(parent, list):
        parent.insert(last, parent[last])
    elif kind == "nest":
        parent[last] = json.loads("[" * 200 + "1" + "]" * 200)
    else:
        parent[last] = draw(st.sampled_from(ODD_VALUES))
    text = json.dumps(tree, ensure_ascii=draw(st.booleans()), indent=1)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, seed: Seed) -> tuple[bytes, bool, bool]:
    """(bytes, inside a zip?, zip cut short?) for one case."""
    data = seed.path.read_bytes()
    for _ in range(draw(st.integers(1, 3))):
        if seed.path.suffix == ".json" and draw(st.booleans()):
            data = draw(tree_mutation(data))
        else:
            data = draw(byte_mutation(data))
    zipped = seed.zip_member is not None and draw(st.integers(0, 4)) == 0
    return data, zipped, zipped and draw(st.booleans())


# -- running one case -------------------------------------------------------------------------
class CaseTimeout(Exception):
    """A case ran past CASE_SECONDS: a hang."""


@contextlib.contextmanager
def time_limit(cpu_seconds: float, wall_seconds: float):
    """Raise CaseTimeout in the block after that much CPU time, or that much wall time."""
    def expired(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"the case ran past {cpu_seconds} s of CPU or {wall_seconds} s")

    timers = ((signal.SIGPROF, signal.ITIMER_PROF, cpu_seconds),
              (signal.SIGALRM, signal.ITIMER_REAL, wall_seconds))
    previous = [signal.signal(number, expired) for number, _, _ in timers]
    for _, timer, seconds in timers:
        signal.setitimer(timer, seconds)
    try:
        yield
    finally:
        for (number, timer, _), handler in zip(timers, previous, strict=True):
            signal.setitimer(timer, 0)
            signal.signal(number, handler)


def write_case(folder: Path, seed: Seed, data: bytes, zipped: bool, cut: bool) -> Path:
    if not zipped:
        path = folder / seed.path.name
        path.write_bytes(data)
        return path
    path = folder / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(seed.zip_member, data)
    if cut:
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    return path


def run_prepare(args: list[str]) -> tuple[int, str]:
    """`doppel ARGS` in this process, as the console script runs it: (exit code, stderr)."""
    from doppel.cli import main

    err = io.StringIO()
    argv = sys.argv
    sys.argv = ["doppel", *args]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    finally:
        sys.argv = argv
    return code, err.getvalue()


def _peak_mb() -> int:
    """This process's peak resident memory so far (a high-water mark, so only growth tells)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def check_case(export: Path, out: Path, me: str | None) -> None:
    """The invariant: a valid dataset folder, or exit 2 with one line and no output folder."""
    from doppel.data.dataset import load_dataset

    args = ["prepare", str(export), "-o", str(out), "-q", "--groups", "--keep-single-speaker"]
    if me:
        args += ["--me", me]
    before = _peak_mb()
    with time_limit(CASE_SECONDS, CASE_WALL_SECONDS):
        code, err = run_prepare(args)
    assert _peak_mb() - before < CASE_MEGABYTES, f"peak memory grew by {_peak_mb() - before} MB"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, leftovers
    if code == 0:
        dataset = load_dataset(out)
        assert list(dataset.conversations()) and (out / "report.html").is_file()
        return
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert not out.exists()


def check_read(export: Path) -> int:
    """The readers' own invariant, without the rest of prepare: every message read, or one
    DoppelError line, in bounded time; and a reader that counts its lines or records accounts
    for each (sources/tally.py). Returns the messages read (-1: refused)."""
    from doppel.errors import DoppelError
    from doppel.sources import open_export

    try:
        with time_limit(CASE_SECONDS, CASE_WALL_SECONDS):
            reader = open_export(export)
            count = sum(1 for _ in reader.messages())
    except DoppelError as error:
        assert "\n" not in str(error), str(error)
        return -1
    tally = getattr(reader, "tally", None)
    if tally is not None and tally.read:
        assert tally.accounted == tally.read, tally
    return count
