"""The README's `doppel bot` lines, run as a user runs them (a shell, ~ as home, out/run a real
run folder), against the fake Bot API, then stopped with SIGTERM as systemd stops them."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from doppel.bot.handlers import REFUSAL
from fake_telegram import FakeTelegram

README = Path(__file__).resolve().parents[1] / "README.md"
USER = 123456789  # the id the README's lines allow


def readme_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def readme_bot_lines() -> list[str]:
    return [line for line in readme_lines() if line.startswith("doppel bot ")]


def readme_token_lines() -> list[str]:
    """The README's lines that make the token file (before any `doppel bot` line)."""
    return [line for line in readme_lines()
            if "bot-token" in line and not line.startswith("doppel bot ")]


def write_token_as_readme_says(home: Path, token: str) -> Path:
    """Run the README's token lines in bash with HOME=home, 'pasting' the token on stdin."""
    for line in readme_token_lines():
        done = subprocess.run(["bash", "-c", line], input=token + "\n", text=True, timeout=30,
                              capture_output=True, env={**os.environ, "HOME": str(home)})
        assert done.returncode == 0, done.stderr
    return home / ".config" / "doppel" / "bot-token"


def test_readme_token_lines(tmp_path):
    """The token file the README makes holds the pasted token and only its owner can read it."""
    token = write_token_as_readme_says(tmp_path, "123456789:AAtest")
    assert token.read_text(encoding="utf-8").strip() == "123456789:AAtest"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def start(line: str, home: Path, telegram: FakeTelegram, *extra: str) -> subprocess.Popen:
    """The README line in bash, from `home` (its out/run) with HOME=home; test flags appended."""
    write_token_as_readme_says(home, telegram.token)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home), "DOPPEL_BOT_API_URL": telegram.url,
           "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    assert shutil.which("doppel", path=env["PATH"]), "the doppel console script is not installed"
    return subprocess.Popen(["bash", "-c", f"exec {line} {' '.join(extra)}"], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen, telegram: FakeTelegram) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert telegram.token not in out + err and "Traceback" not in err
    return err


def run_readme_lines(run_dir: Path, home: Path, *extra: str) -> list[str]:
    """Both README lines on this run: first who is refused, then the allowed friend's chat."""
    (home / "out").mkdir(parents=True)
    shutil.copytree(run_dir, home / "out" / "run")
    find_ids, run = readme_bot_lines()
    with FakeTelegram() as telegram:
        process = start(find_ids, home, telegram, *extra)
        try:
            telegram.say(USER, "hey", first_name="Sam")
            assert telegram.wait_sent(USER, 1, timeout=180) == [REFUSAL.format(id=USER)]
        finally:
            err = stop(process, telegram)
        assert f"refused user {USER} (Sam): add --allow {USER}" in err

        process = start(run, home, telegram, *extra)
        try:
            telegram.say(USER, "/whoami", first_name="Samuel")
            assert telegram.wait_sent(USER, 2, timeout=180)[1] == \
                f"I know you as Sam (Telegram id {USER})."
            telegram.say(USER, "hey, what's up?", first_name="Samuel")
            telegram.wait_sent(USER, 3, timeout=180)  # the twin's first message at least
        finally:
            err = stop(process, telegram)
        assert "what's up" not in err  # texts stay out of the log without --verbose
    state = home / "out" / "run.bot.sqlite"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    return telegram.sent(USER)[2:]


def test_readme_shows_two_bot_lines():
    find_ids, run = readme_bot_lines()
    assert "--allow" not in find_ids and f"--allow {USER} --friend {USER}=Sam" in run


@pytest.mark.slow
def test_readme_bot_lines_on_the_embedded_model(embedded_twin, tmp_path):
    """The README's lines on a LoRA run over the embedded SmolLM2-135M (the session's, copied to
    the user's out/run): the real load, the real engine, sampling flags passed through."""
    replies = run_readme_lines(embedded_twin, tmp_path / "home", "--delay-per-char", "0",
                               "--max-new-tokens", "12", "--seed", "1", "--temperature", "0.7")
    assert replies and all(reply.strip() for reply in replies)
