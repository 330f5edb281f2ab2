"""Wheels for an offline GPU node: what doppel needs beyond the node's own PyTorch stack.

Usage: python3 bench/wheelhouse.py --python-version 3.12 [--out wheelhouse] [--glibc 2.28]
                                   [--node-has torch transformers peft accelerate]
       (make wheelhouse PY=3.12 runs it)

A CUDA PyTorch image brings torch, and often transformers, peft and accelerate, built for its
CUDA; installing them again from PyPI would pull gigabytes and a CUDA build that may not match the
driver. So pip resolves doppel's dependencies *together with* the packages the node has (for the
node's Python and manylinux x86_64, wheels only, nothing installed: `pip install --dry-run
--report`), and downloads every resolved package except torch with all it depends on (the CUDA
libraries) and the other packages the node has (not what they depend on: a node's older
transformers may not bring what today's does), plus setuptools for building doppel's editable
install without an index. On the node, `pip install --no-index --find-links wheelhouse -e .`
keeps every package the node has whose version satisfies doppel's ranges.
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


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def platforms(glibc: str) -> list[str]:
    """manylinux x86_64 tags a node with this glibc runs, newest first."""
    major, minor = (int(part) for part in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{legacy[m]}_x86_64" for m in legacy if m <= minor]


def doppel_requirements(node_has: set[str]) -> list[str]:
    """pyproject's dependencies, without those the node brings (their resolution adds them)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    return [spec for spec in project["dependencies"]
            if canonical(Requirement(spec).name) not in node_has]


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
    parser.add_argument("--node-has", nargs="*", default=list(NODE_HAS),
                        help="packages the node brings (never downloaded, nor what they need)")
    args = parser.parse_args(argv)
    node_has = {canonical(name) for name in args.node_has} | {"torch"}  # never torch
    target = pip_target(args.python_version, args.glibc)
    items = resolve([*doppel_requirements(node_has), *sorted(node_has), *BUILD], target)
    # torch and all it pulls in (CUDA libraries: gigabytes) are the node's; of the other packages
    # the node brings, only they themselves: what they need is downloaded too, in case the
    # node's versions need less than today's (pip keeps what the node has when it satisfies)
    skip = (closure(items, {"torch"}, args.python_version) | node_has) - {
        canonical(b.split(">")[0]) for b in BUILD}
    pins = sorted(f"{item['metadata']['name']}=={item['metadata']['version']}" for item in items
                  if canonical(item["metadata"]["name"]) not in skip)
    args.out.mkdir(parents=True, exist_ok=True)
    download(pins, target, args.out)
    prune(args.out, pins)
    (args.out / "PYTHON_VERSION").write_text(args.python_version + "\n")
    wheels = sorted(args.out.glob("*.whl"))
    size = sum(wheel.stat().st_size for wheel in wheels)
    print(f"{args.out}: {len(wheels)} wheels, {size / 2**20:.1f} MB, for Python "
          f"{args.python_version} on manylinux x86_64 (glibc {args.glibc}); the node brings "
          f"{', '.join(sorted(node_has))} (and all torch needs)")


if __name__ == "__main__":
    main()
