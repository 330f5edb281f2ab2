"""The Hugging Face Trainer wiring behind `doppel train`: the base model (4-bit for QLoRA), the
PEFT adapter, TrainingArguments (FSDP2 included), doppel's Trainer subclass, and saving."""

from __future__ import annotations

import os
from pathlib import Path

from doppel import runs
from doppel.errors import DoppelError
from doppel.hardware import has_cuda
from doppel.models import add_token_embeddings
from doppel.train import distributed
from doppel.train.callbacks import MetricsLog, RichProgress
from doppel.train.data import LengthBucketSampler, make_collator
from doppel.train.loss import labelled_loss, logits_where_labelled

OOM_HINT = (
    "out of memory: lower micro_batch_size or max_length, turn on gradient_checkpointing, "
    "use method lora/qlora, or add processes with fsdp"
)


def load_base(plan):
    """The base model in the dtype the method wants, its embeddings matching the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    config = plan.config
    # On GPUs, full fine-tuning keeps fp32 master weights under bf16 autocast. On CPUs autocast is
    # several times slower than plain bf16 weights (measured in docs/benchmarks.md), so bf16 there
    # means bf16 weights; LoRA adapters stay fp32 either way (PEFT's autocast_adapter_dtype).
    keep_fp32 = config.method == "full" and has_cuda()
    kwargs: dict = {"dtype": torch.bfloat16 if plan.bf16 and not keep_fp32 else torch.float32}
    if config.method == "qlora":
        from transformers import BitsAndBytesConfig

        # bitsandbytes runs NF4 on CPU as well as CUDA: the weights quantise where they load
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan.bf16 else torch.float32,
        )
        kwargs["device_map"] = {"": _device()}
    if has_cuda():
        kwargs["attn_implementation"] = _fast_attention()
    model = AutoModelForCausalLM.from_pretrained(plan.model_dir, **kwargs)
    model.config.use_cache = False  # packed rows leak across windows with the cache on
    added = len(plan.tokenizer) - model.get_input_embeddings().weight.shape[0]
    add_token_embeddings(model, plan.tokenizer)
    return model, list(range(len(plan.tokenizer) - added, len(plan.tokenizer))) if added > 0 else []


def _device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if has_cuda() else "cpu"


def _fast_attention() -> str:
    try:
        import flash_attn  # noqa: F401

        return "flash_attention_2"
    except ImportError:
        return "sdpa"


def wrap_lora(model, plan, new_token_ids: list[int]):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    config = plan.config
    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, config.gradient_checkpointing)
    targets = config.target_modules
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        use_rslora=config.use_rslora,
        task_type="CAUSAL_LM",
        target_modules=targets
        if targets == "all-linear"
        else [t.strip() for t in targets.split(",")],
        # chat tokens new to this tokenizer must learn their embeddings, or the model never stops
        trainable_token_indices={"embed_tokens": new_token_ids} if new_token_ids else None,
    )
    return get_peft_model(model, lora)


def training_arguments(plan, out_dir: Path):
    from transformers import TrainingArguments

    config = plan.config
    cuda = has_cuda()
    fsdp_config = None
    # under torchrun even one process shards (a 1-GPU FSDP2 run checks the wiring)
    if config.fsdp and distributed.launched():
        fsdp_config = {
            "version": 2,
            "transformer_layer_cls_to_wrap": [_decoder_layer_class(plan)],
            "reshard_after_forward": True,
            "activation_checkpointing": config.gradient_checkpointing,
            # checkpoints: one shard per process (fast, resumable); the final weights are
            # consolidated into one safetensors file by save_weights
            "state_dict_type": "SHARDED_STATE_DICT",
        }
    return TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        # transformers 5 reads a warmup_steps value below 1 as a share of the total steps
        # (warmup_ratio is deprecated there); the config keeps the clearer name
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="epoch" if len(plan.val) else "no",
        bf16=plan.bf16 and cuda,  # autocast: a GPU win, a CPU loss
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and distributed.launched() else None,
        ddp_find_unused_parameters=False,  # every trained parameter takes part in each step
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="random",  # "grouped" uses LengthBucketSampler (see _trainer_class)
        gradient_checkpointing=config.gradient_checkpointing and not fsdp_config,
        torch_compile=config.compile,
        fsdp=bool(fsdp_config),
        fsdp_config=fsdp_config,
        include_num_input_tokens_seen="non_padding",
        prediction_loss_only=True,  # validation needs the loss only: never gather its logits
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        save_only_model=False,
        dataloader_num_workers=0,
    )


def _decoder_layer_class(plan) -> str:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(plan.model_dir))
    return type(model.model.layers[0]).__name__


def _trainer_class(batching: str):
    """The HF Trainer, with the loss computed from labelled positions only (train/loss.py), and
    taught that FSDP2 also runs on CPU processes (gloo).

    accelerate only turns FSDP on for GPU-like backends (AcceleratorState leaves MULTI_CPU out:
    https://github.com/huggingface/accelerate/blob/v1.15.0/src/accelerate/state.py#L986-L1013),
    yet torch's fully_shard works on CPU with gloo: CI tests the real sharded path that way.
    """
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from transformers import Trainer

    class DoppelTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, compute_loss_func=labelled_loss, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            with logits_where_labelled(self.accelerator.unwrap_model(model), inputs["labels"]):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def create_accelerator_and_postprocess(self):
            super().create_accelerator_and_postprocess()
            state = self.accelerator.state
            wants_fsdp = self.args.fsdp_plugin_args is not None
            if wants_fsdp and state.distributed_type == DistributedType.MULTI_CPU:
                state.fsdp_plugin = FullyShardedDataParallelPlugin(**self.args.fsdp_plugin_args)
                state.distributed_type = DistributedType.FSDP
                self.is_fsdp_enabled = True

        def _get_train_sampler(self, train_dataset=None):
            if batching != "grouped":
                return super()._get_train_sampler(train_dataset)
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(example.input_ids) for example in dataset.examples]
            per_step = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthBucketSampler(lengths, per_step, self.args.data_seed or 0)

    return DoppelTrainer


def run_trainer(plan, out_dir: Path, checkpoint: Path | None, after_train=None) -> dict:
    """Train, evaluate and save; returns the numbers for the run's summary.

    `after_train(trainer)` runs on every process before saving (tests use it to read the live,
    possibly sharded, model)."""
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    torch.manual_seed(plan.config.seed)
    model, new_token_ids = load_base(plan)
    if plan.config.method in ("lora", "qlora"):
        model = wrap_lora(model, plan, new_token_ids)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    metrics = MetricsLog(out_dir / runs.METRICS)
    trainer = _trainer_class(plan.config.batching)(
        model=model,
        args=training_arguments(plan, out_dir),
        train_dataset=plan.train,
        eval_dataset=plan.val if len(plan.val) else None,
        data_collator=make_collator(plan.config.batching, plan.tokenizer.pad_token_id),
        callbacks=[metrics, RichProgress(metrics)],
    )
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    _reset_peak_memory()
    try:
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        val = _final_eval(trainer) if len(plan.val) else {}
    except torch.OutOfMemoryError:
        raise DoppelError(OOM_HINT) from None
    if after_train is not None:
        after_train(trainer)
    save_weights(trainer, plan, out_dir)
    return {
        "trainable_params": trainable,
        "base_weights": _base_weights(model),
        "sharding": "fsdp2" if trainer.is_fsdp_enabled else "none",
        "train_loss": round(output.training_loss, 4),
        "val_loss": round(val["eval_loss"], 4) if "eval_loss" in val else None,
        "steps": trainer.state.global_step,
        "tokens_seen": int(trainer.state.num_input_tokens_seen or 0),
        "train_runtime_s": round(output.metrics.get("train_runtime", 0.0), 1),
        "tokens_per_s": round(
            (trainer.state.num_input_tokens_seen or 0)
            / max(output.metrics.get("train_runtime", 1e-9), 1e-9),
            1,
        ),
        "peak_memory_mb": _peak_memory_mb(),
    }


def _final_eval(trainer) -> dict:
    """The validation loss at the last step: the epoch-end evaluation when the run ended on one
    (eval_strategy "epoch" evaluates at the last step too), else a fresh evaluation."""
    evaluated = [row for row in trainer.state.log_history if "eval_loss" in row]
    if evaluated and evaluated[-1].get("step") == trainer.state.global_step:
        return evaluated[-1]
    return trainer.evaluate()


def save_weights(trainer, plan, out_dir: Path) -> None:
    """Adapter or consolidated full weights, plus the tokenizer with its chat tokens."""
    target = out_dir / (
        runs.ADAPTER_DIR if plan.config.method in ("lora", "qlora") else runs.MODEL_DIR
    )
    if trainer.is_fsdp_enabled:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # every process takes part in the gather; rank 0 receives the full tensors on CPU
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state_dict = get_model_state_dict(trainer.model, options=options)
        if trainer.is_world_process_zero():
            unwrapped = trainer.accelerator.unwrap_model(trainer.model)
            unwrapped.save_pretrained(target, state_dict=state_dict)
    else:
        trainer.save_model(str(target))
    if trainer.is_world_process_zero():
        plan.tokenizer.save_pretrained(out_dir / runs.TOKENIZER_DIR)


def _base_weights(model) -> str:
    """How the frozen weights are stored: "nf4" (QLoRA's 4-bit base), else their dtype."""
    frozen = [p for p in model.parameters() if not p.requires_grad]
    if any(type(p).__name__ == "Params4bit" for p in frozen):
        return "nf4"
    kinds = {str(p.dtype).removeprefix("torch.") for p in (frozen or list(model.parameters()))}
    return "+".join(sorted(kinds))


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mb() -> float:
    """Peak GPU memory on CUDA, else the process's peak resident set."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
