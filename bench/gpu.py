"""Training speed on one CUDA GPU: tokens/s, model FLOPs utilisation and peak memory, for LoRA and
full fine-tuning of the embedded SmolLM2-135M and of a randomly initialised Mistral-7B-shaped model.

Usage: python bench/gpu.py --out gpu.json [--seq 1024] [--steps 10] [--warmup 3]
                           [--peak-tflops 989] [--cases 135m-lora 135m-full 7b-lora 7b-full]
       python bench/gpu.py --device cpu --tiny --out /tmp/gpu-smoke.json   # logic check, no GPU

Every case trains on random full-length token rows (no padding: this measures the model, not the
data), under the settings doppel uses on GPUs: sdpa attention, bf16. LoRA: all-linear r16 alpha 32,
frozen bf16 base, fp32 adapters, bf16 autocast. Full 135M: fp32 master weights under bf16 autocast,
fused AdamW. Full 7B: 7.2B parameters with fp32 master weights and AdamW state (16 bytes/param =
116 GB) fit no 80 GB card, so this case keeps bf16 weights, gradients and AdamW moments (fused
AdamW, 8 bytes/param, ~58 GB): a throughput measurement, not a recipe (doppel's full recipe shards
with FSDP2 instead).
Each case tries micro batches from largest to smallest (then with activation checkpointing) and
keeps the first that does not run out of memory. MFU = 6 * N * tokens/s / the card's dense bf16
peak (N: parameters that do matmuls: all but the input embedding); LoRA does ~4N of real work a
token, so its MFU by 6N reads as "a full fine-tune at this rate". The 7B model is built directly on
the GPU from a config (no download, no CPU copy). Prints a table; writes JSON to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# dense bf16 tensor-core peaks (no sparsity), matched in order against torch's device name
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
               ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
               ("RTX 4090", 165.0), ("RTX 3090", 71.0)]


@dataclass
class Case:
    name: str
    model: str          # "135m" or "7b"
    method: str         # "lora" or "full"
    batches: list[tuple[int, bool]]  # (micro batch, activation checkpointing), tried in order


CASES = [
    Case("135m-lora", "135m", "lora", [(32, False), (16, False), (8, False)]),
    Case("135m-full", "135m", "full", [(32, False), (16, False), (8, False)]),
    Case("7b-lora", "7b", "lora", [(8, False), (4, False), (2, False), (4, True)]),
    Case("7b-full", "7b", "full", [(2, False), (1, False), (2, True), (1, True)]),
]


@dataclass
class Result:
    case: str
    status: str = "ok"
    params: int = 0
    matmul_params: int = 0
    trainable: int = 0
    micro_batch: int = 0
    checkpointing: bool = False
    weights: str = ""
    optimizer: str = ""
    seq: int = 0
    timed_steps: int = 0
    step_s: float = 0.0
    tokens_per_s: float = 0.0
    mfu: float | None = None
    peak_memory_gb: float = 0.0
    losses: list[float] = field(default_factory=list)


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_TFLOPS:
        if key in device_name:
            return value
    return None


def mistral_7b_config(tiny: bool):
    """Mistral-7B-v0.1's shape (sliding window off: at seq 1024 it never applies)."""
    from transformers import MistralConfig

    if tiny:
        return MistralConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, intermediate_size=448, vocab_size=1000,
                             sliding_window=None)
    return MistralConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, intermediate_size=14336, vocab_size=32000,
                         max_position_embeddings=32768, rope_theta=10000.0, sliding_window=None)


def build_model(case: Case, device, tiny: bool, model_135m: str = "smollm2-135m"):
    """The model in the dtype its method trains in, on the device."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if case.method == "full" and case.model == "135m" else torch.bfloat16
    if case.model == "135m":
        from doppel.models import resolve_model

        model = AutoModelForCausalLM.from_pretrained(resolve_model(model_135m), dtype=dtype,
                                                     attn_implementation="sdpa").to(device)
    else:
        with torch.device(device):  # weights initialised where they live: no CPU copy, no download
            model = AutoModelForCausalLM.from_config(mistral_7b_config(tiny), dtype=dtype,
                                                     attn_implementation="sdpa")
    model.config.use_cache = False
    if case.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)  # adapters in fp32 on the bf16 base (PEFT's default)
    return model


def count_params(model) -> tuple[int, int, int]:
    """All parameters, those that do matmuls (not the input embedding), and trainable ones."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    matmul = total - (0 if head is embedding else embedding.numel())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, matmul, trainable


def _optimizer(model, device):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel, no foreach temporaries (a 7B foreach step would copy every moment)
    return torch.optim.AdamW(params, lr=1e-5, fused=True)


def time_steps(model, device, batch: int, seq: int, vocab: int, warmup: int, steps: int):
    """Seconds per optimizer step over `steps` after `warmup`, and the loss of every step."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq), generator=generator).to(device)
    optimizer = _optimizer(model, device)
    losses, started = [], 0.0
    try:
        for step in range(warmup + steps):
            if step == warmup:
                _sync(device)
                started = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
        _sync(device)
        return (time.perf_counter() - started) / steps, [round(float(x), 4) for x in losses]
    finally:
        del optimizer
        model.zero_grad(set_to_none=True)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


class Memory:
    """Peak memory of one case: the GPU allocator's, or the process's resident set on CPU."""

    def __init__(self, device) -> None:
        self.device = device

    def reset(self) -> None:
        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM

    def peak_gb(self) -> float:
        import torch

        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() / 2**30
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
        return float("nan")


def _checkpoint_activations(model) -> None:
    """Recompute each decoder layer in the backward pass (transformers 5 renamed the switch)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    enable = getattr(base, "activation_checkpointing_enable", base.gradient_checkpointing_enable)
    enable({"use_reentrant": False})


def run_case(case: Case, args, device, peak: float | None) -> Result:
    import torch

    from doppel.errors import DoppelError

    result = Result(case.name, seq=args.seq, timed_steps=args.steps)
    memory = Memory(device)
    memory.reset()
    try:
        model = build_model(case, device, args.tiny, args.model_135m)
    except DoppelError as error:  # e.g. the embedded model's package is not installed here
        result.status = f"skipped: {error}"
        return result
    model.train()
    result.params, result.matmul_params, result.trainable = count_params(model)
    vocab = model.get_input_embeddings().weight.shape[0]
    trained = str(next(p for p in model.parameters() if p.requires_grad).dtype)[len("torch."):]
    result.weights = ("bf16 frozen base, " if case.method == "lora" else "") + f"{trained} trained"
    result.optimizer = f"AdamW fused, {trained} moments"
    batches = [(1, False)] if args.tiny and device.type == "cpu" else case.batches
    for batch, checkpointing in batches:
        if checkpointing:
            _checkpoint_activations(model)
        try:
            step_s, losses = time_steps(model, device, batch, args.seq, vocab, args.warmup,
                                        args.steps)
        except torch.OutOfMemoryError:
            step_s = None  # free the failed step's tensors after the except block lets go of them
        if step_s is None:
            how = " + checkpointing" if checkpointing else ""
            print(f"  {case.name}: micro batch {batch}{how} ran out of memory; trying the next",
                  flush=True)
            memory.reset()
            continue
        result.micro_batch, result.checkpointing, result.step_s, result.losses = (
            batch, checkpointing, round(step_s, 4), losses)
        result.tokens_per_s = round(batch * args.seq / step_s, 1)
        if peak:
            result.mfu = round(6 * result.matmul_params * result.tokens_per_s / (peak * 1e12), 4)
        break
    else:
        result.status = "out of memory at every micro batch"
    result.peak_memory_gb = round(memory.peak_gb(), 2)
    del model
    memory.reset()
    return result


def table(results: list[Result]) -> str:
    rows = ["| case | params | trainable | micro batch x seq | ckpt | tokens/s | MFU (6N) "
            "| peak memory GB | status |", "|---|---:|---:|---|---|---:|---:|---:|---|"]
    for r in results:
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "-"
        rows.append(f"| {r.case} | {r.params / 1e6:,.0f}M | {r.trainable / 1e6:,.1f}M "
                    f"| {r.micro_batch} x {r.seq} | {'yes' if r.checkpointing else 'no'} "
                    f"| {r.tokens_per_s:,.0f} | {mfu} | {r.peak_memory_gb:,.1f} | {r.status} |")
    return "\n".join(rows)


def _device(args):
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA GPU and none is visible; run it on a GPU machine "
              "(or check the logic here with --device cpu --tiny)", file=sys.stderr)
        sys.exit(2)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return device, name


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON file to write",
                        default=Path(tempfile.gettempdir()) / "doppel-bench-gpu.json")
    parser.add_argument("--seq", type=int, default=1024, help="tokens per row")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first")
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak, if unknown")
    parser.add_argument("--cases", nargs="+", choices=[c.name for c in CASES],
                        default=[c.name for c in CASES])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--model-135m", default="smollm2-135m",
                        help="the 135m cases' model: embedded name or folder (random weights "
                             "offline: bench/offline_models.py)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: a 2-layer Mistral shape, seq 64, 2+1 steps")
    args = parser.parse_args(argv)
    if args.tiny:
        args.seq, args.steps, args.warmup = min(args.seq, 64), min(args.steps, 2), 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device, name = _device(args)
    import torch

    peak = peak_tflops(name, args.peak_tflops)
    if peak is None:
        print(f"no bf16 peak known for {name}: MFU left out (pass --peak-tflops)", flush=True)
    started = time.perf_counter()
    results = []
    for case in [c for c in CASES if c.name in args.cases]:
        print(f"{case.name} ...", flush=True)
        results.append(run_case(case, args, device, peak))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    report = {"device": name, "peak_bf16_tflops": peak, "torch": torch.__version__,
              "wall_s": round(time.perf_counter() - started, 1), "tiny": args.tiny,
              "results": [asdict(r) for r in results]}
    from doppel.atomic import atomic_file

    with atomic_file(args.out) as handle:
        json.dump(report, handle, indent=2)
    print(f"device: {name}, dense bf16 peak {peak or '?'} TFLOP/s, {report['wall_s']} s")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
