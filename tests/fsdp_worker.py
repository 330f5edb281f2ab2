"""Run under torchrun by test_train.py: full fine-tuning sharded with FSDP2 over gloo processes.

Usage: torchrun --nproc_per_node 2 tests/fsdp_worker.py DATASET MODEL RUN_DIR LOGITS.pt
After training, every rank runs the live sharded model on a fixed input and rank 0 saves the
logits, so the test can check the consolidated checkpoint reproduces them in one process.
"""

import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from doppel.train.config import load_config
from doppel.train.run import train

dataset, model, run_dir, logits_path = sys.argv[1:5]
config = load_config(
    "cpu-demo",
    {
        "model": model,
        "method": "full",
        "fsdp": True,
        "max_steps": 3,
        "micro_batch_size": 2,
        "max_length": 128,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "precision": "fp32",
    },
)
FIXED = torch.arange(5, 37).unsqueeze(0)


def check_and_record(trainer) -> None:
    model = trainer.model_wrapped if hasattr(trainer, "model_wrapped") else trainer.model
    sharded = [p for p in trainer.model.parameters() if isinstance(p, DTensor)]
    assert sharded, "FSDP2 did not shard the parameters"
    with torch.no_grad():
        logits = model(input_ids=FIXED).logits
    if torch.distributed.get_rank() == 0:
        torch.save({"logits": logits, "sharded": len(sharded)}, logits_path)


train(Path(dataset), Path(run_dir), config, force=True, after_train=check_and_record)
