"""The loss curve of a run, as a PNG next to its metrics."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path


def plot_loss(rows: list[dict], target: Path) -> bool:
    """Draw it, where matplotlib is installed (an offline node's check wheelhouse leaves it out:
    the run then has metrics.jsonl alone). True when drawn."""
    if find_spec("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r and "step" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("doppel training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(target)
    return True
