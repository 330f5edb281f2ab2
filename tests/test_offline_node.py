"""README "On an offline GPU cluster", as written, on a node made here: a fresh venv holding only
torch, transformers, peft and accelerate (as a CUDA image would), the wheelhouse that `make
wheelhouse` built for this Python (`make test` builds it first), and no network: a network
namespace with only loopback where `unshare -n` works (root), proxies at a closed port always,
pip's config files and find-links gone. A wheel the wheelhouse lacks, or a download anywhere in
the check, fails here rather than on a lease; so does a copy for the cluster of 60 MB or more.
The check's CPU run here is the suite's only run of bench/gpu_check.py (its rows, exit code)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import Distribution, distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = REPO / "wheelhouse"
BENCH = REPO / "bench"
NODE_PACKAGES = ("torch", "transformers", "peft", "accelerate")
THIS_PYTHON = "{}.{}".format(*sys.version_info[:2])
sys.path.insert(0, str(BENCH))

from wheelhouse import (  # noqa: E402
    NOT_FOR_CHECK,
    REQUIREMENTS,
    canonical,
    closure,
    doppel_requirements,
    platforms,
)

CARRY_LIMIT = 60e6  # bytes: the checkout's files plus the wheelhouse (issue 23)
CHECK_ROWS = {"sample export -> doppel prepare", "random-weight SmolLM2-135M shape + tokenizer",
              "lora", "qlora", "fsdp2 full, 1 process",
              *(f"bench/gpu.py {case}" for case in ("135m-lora", "135m-full", "7b-lora",
                                                    "7b-full"))}


def offline_section() -> list[list[str]]:
    """The lines of each bash block under the README's offline heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## On an offline GPU cluster\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def _wheelhouse() -> Path:
    stamp = WHEELHOUSE / f".python-{THIS_PYTHON}"
    if not stamp.is_file():
        pytest.skip(f"no wheelhouse for Python {THIS_PYTHON}: make wheelhouse (make test does)")
    return WHEELHOUSE


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Path:
    """A venv with the four packages a CUDA image brings and all they depend on, at the versions
    this suite runs: this venv's installed files, hard-linked as pip unpacked them (RECORD, the
    byte-compiled files too; console scripts rewritten for the node's Python), pip among them as
    an image has it. Seconds, where ensurepip and a pip install of the same pins unpacked them
    again (loaded machine: 18 s against 2 min 46 s); pip on the node sees them installed all the
    same (their dist-info is there)."""
    _wheelhouse()  # skips before the venv is built when there is nothing to install from
    root = tmp_path_factory.mktemp("node")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_path('purelib'))"], capture_output=True,
                               text=True, check=True).stdout.strip())
    for dist in node_distributions():
        _link_installed(dist, site, python)
    return root


def node_distributions() -> list[Distribution]:
    """The installed distributions of NODE_PACKAGES and everything they depend on, and pip."""
    installed: dict[str, Distribution] = {}
    for dist in distributions():
        installed.setdefault(canonical(dist.metadata["Name"]), dist)
    items = [{"metadata": {"name": name, "requires_dist": dist.requires or []}}
             for name, dist in installed.items()]
    names = closure(items, set(NODE_PACKAGES), THIS_PYTHON) | {"pip"}
    return [installed[name] for name in sorted(names) if name in installed]


def _link_installed(dist: Distribution, site: Path, python: Path) -> None:
    """dist's files (its RECORD) into another venv's site-packages and bin/."""
    for entry in dist.files or ():
        source = Path(dist.locate_file(entry))
        if not source.is_file():
            continue
        parts = Path(entry).parts
        if parts[0] != "..":
            target = site / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another filesystem
                shutil.copy2(source, target)
        elif "bin" in parts:  # a console script: its shebang names this venv's Python
            target = python.parent / parts[-1]
            script = source.read_bytes()
            if script.startswith(b"#!"):
                script = b"#!" + bytes(python) + script[script.index(b"\n"):]
            target.write_bytes(script)
            target.chmod(source.stat().st_mode)


def _offline_env(home: Path, node: Path) -> dict[str, str]:
    """No pip config (find-links, extra indexes), proxies at a closed port, nothing of ours."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("PIP_", "PYTHON", "HF_", "VIRTUAL_ENV"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    return {**keep, "HOME": str(home), "PIP_CONFIG_FILE": os.devnull,
            "PATH": f"{node / 'venv' / 'bin'}{os.pathsep}{keep['PATH']}",
            "http_proxy": closed, "https_proxy": closed, "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed, "ALL_PROXY": closed, "OMP_NUM_THREADS": "1"}


def _no_network(script: str) -> list[str]:
    """bash running `script` with loopback only, where this user may make a network namespace."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        return ["bash", "-ec", script]
    return ["unshare", "-n", "bash", "-ec", f"ip link set lo up\n{script}"]


def _copy_checkout(target: Path) -> Path:
    """What `git clone` plus the wheelhouse holds: the files a user copies to the cluster."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    shutil.copytree(WHEELHOUSE, target / "wheelhouse")
    return target


def _check_wheelhouse(wheelhouse: Path) -> None:
    """The check's wheelhouse: what the node lacks, nothing the node or the check does without."""
    names = {canonical(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")}
    assert not names & set(NODE_PACKAGES)  # never torch, nor what the node brings
    assert not names & {"numpy", "tokenizers", "safetensors", "huggingface-hub", "hf-xet"}
    assert not names & set(NOT_FOR_CHECK), "rebuild it: make wheelhouse (--for check)"
    assert {"orjson", "phonenumbers", "gguf", "bitsandbytes"} <= names
    header = (wheelhouse / REQUIREMENTS).read_text().splitlines()[0]
    assert "--for check" in header


def _check_table(report: dict, stdout: str) -> None:
    """Every part of the check ran green, with the numbers each row promises."""
    rows = {r["step"]: r for r in report["rows"]}
    assert set(rows) == CHECK_ROWS
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert rows["qlora"]["base_weights"] == "nf4" and rows["lora"]["base_weights"] != "nf4"
    assert rows["fsdp2 full, 1 process"]["sharding"] == "fsdp2"
    for name in ("lora", "qlora", "fsdp2 full, 1 process"):
        row = rows[name]
        assert row["steps"] == 3 and row["tokens_per_s"] > 0 and row["mfu"] > 0
        assert row["peak_memory_gb"] > 0 and row["estimate_gb"] > 0
    assert rows["bench/gpu.py 135m-lora"]["mfu"] is not None
    assert "| fsdp2 full, 1 process | ok |" in stdout


@pytest.mark.slow
def test_readme_offline_steps_on_a_node_without_network(node, tmp_path):
    wheelhouse = _wheelhouse()
    make, install, target = offline_section()
    assert make == ["make wheelhouse PY=3.12"]
    made = subprocess.run(["make", "-n", *shlex.split(make[0])[1:]], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    assert "bench/wheelhouse.py --python-version 3.12" in made
    _check_wheelhouse(wheelhouse)
    checkout = _copy_checkout(tmp_path / "doppel")
    carried = sum(f.stat().st_size for f in checkout.rglob("*") if f.is_file())
    assert carried < CARRY_LIMIT, f"{carried / 1e6:.1f} MB to copy to the cluster"
    env = _offline_env(tmp_path / "home", node)

    # read-only system Python: the wheels beside it, doppel from src (first: the venv stays bare)
    script = "\n".join([*target, "python3 -m doppel sample-export sample",
                        "python3 -m doppel prepare sample/result.json -o data -q"])
    done = subprocess.run(_no_network(script), cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (checkout / "data" / "conversations.jsonl").is_file()
    # no matplotlib on the node: the report says there are no plots, and shows none
    report_md = (checkout / "data" / "report.md").read_text()
    assert "Plots: none, matplotlib is not installed" in report_md and "![" not in report_md
    # nor the memory's embedder: no index, and prepare says how to build one
    assert "memory index: not built" in done.stderr
    assert not (checkout / "data" / "memory.sqlite").exists()

    # the node's lines as typed; the check in its CPU form here (no GPU)
    out = tmp_path / "check"
    script = "\n".join([*install[:-1], f"{install[-1]} --device cpu --tiny --out {out}"])
    done = subprocess.run(_no_network(script), cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=2700)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "check.json").read_text())
    assert report["offline"] and report["python"].startswith(str(node / "venv"))
    _check_table(report, done.stdout)
    assert (out / "lora" / "metrics.jsonl").is_file() and not (out / "lora" / "loss.png").exists()
    print(done.stdout)  # the table, for docs/benchmarks.md


def test_check_wheelhouse_leaves_out_only_what_the_check_never_imports():
    """--for check: pyproject's dependencies less NOT_FOR_CHECK, each a real dependency."""
    everything = doppel_requirements("all")
    names = [canonical(Requirement(spec).name) for spec in everything]
    assert set(NOT_FOR_CHECK) <= set(names)  # a renamed dependency is not silently carried
    check = doppel_requirements("check")
    assert [s for s in everything if s not in check] == [
        s for s, n in zip(everything, names, strict=True) if n in NOT_FOR_CHECK]
    assert any(spec.startswith("bitsandbytes") for spec in check)  # QLoRA on CUDA
    assert any(spec.startswith("transformers>=") for spec in check)  # the node's, with its range


def test_wheelhouse_skips_what_the_node_brings_and_all_it_needs():
    """The closure follows requirements whose markers hold for the node's Python, not extras."""
    items = [{"metadata": {"name": name, "requires_dist": requires}} for name, requires in [
        ("transformers", ["numpy>=1.17", "tokenizers<1", "pytest; extra == 'testing'"]),
        ("tokenizers", ["huggingface_hub>=0.16"]), ("huggingface-hub", []), ("numpy", []),
        ("torch", ["setuptools; python_version >= '3.12'", "cuda-toolkit[cufft]"]),
        ("cuda-toolkit", ["nvidia-cufft; extra == 'cufft'", "nvidia-cublas; extra == 'cublas'"]),
        ("nvidia-cufft", []), ("nvidia-cublas", []), ("setuptools", []),
        ("pytest", []), ("orjson", [])]]
    assert closure(items, {"transformers", "torch"}, "3.12") == {
        "transformers", "numpy", "tokenizers", "huggingface-hub", "torch", "setuptools",
        "cuda-toolkit", "nvidia-cufft"}
    assert "setuptools" not in closure(items, {"torch"}, "3.11")
    assert platforms("2.17")[0] == "manylinux_2_17_x86_64" and "manylinux2014_x86_64" in \
        platforms("2.17") and "manylinux_2_24_x86_64" in platforms("2.28")
