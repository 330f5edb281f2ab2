"""A merged transformers model as one GGUF file, written with the `gguf` package (no compiler).

Per family, the few things llama.cpp stores differently from transformers: the architecture name,
Llama-style q/k rows permuted to llama.cpp's rotary layout, Gemma's RMSNorm weights stored as
1 + w. Tensor names come from gguf's own map (`get_tensor_name_map`), the one transformers uses to
read GGUF back. Tensors are converted one at a time as they are written, behind a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from doppel.errors import DoppelError


@dataclass(frozen=True)
class Family:
    arch: str  # llama.cpp's architecture name
    permute_qk: bool = False
    norm_offset: float = 0.0


# transformers model_type -> how llama.cpp stores that family (every family doppel trains)
FAMILIES = {
    "llama": Family("llama", permute_qk=True),  # SmolLM2, Llama 2/3
    "mistral": Family("llama", permute_qk=True),
    "qwen2": Family("qwen2"),
    "qwen3": Family("qwen3"),
    "gemma3_text": Family("gemma3", norm_offset=1.0),
}
QUANT_BLOCK = 32  # Q8_0 quantises rows in blocks of 32 values
GGUF_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}
_BYTES = {"F32": 4.0, "F16": 2.0, "BF16": 2.0, "Q8_0": 34 / 32}
_FILE_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}  # gguf.LlamaFileType


def family_of(model_type: str) -> Family:
    if model_type not in FAMILIES:
        raise DoppelError(f"cannot export a {model_type!r} model to GGUF; supported: "
                          f"{', '.join(sorted(FAMILIES))} (or use --format hf)")
    return FAMILIES[model_type]


@dataclass
class TensorPlan:
    name: str  # GGUF name
    source: str  # state dict key
    shape: tuple[int, ...]
    kind: str  # F32 | F16 | BF16 | Q8_0

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return int(count * _BYTES[self.kind])


def plan_tensors(state: dict, config, kind: str) -> list[TensorPlan]:
    """What goes into the file, under which name and type; raises before anything is written."""
    import gguf

    family = family_of(config.model_type)
    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == family.arch)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    plans = []
    for key, tensor in state.items():
        if tied and key == "lm_head.weight":
            continue
        stem, _, suffix = key.rpartition(".")
        name = names.get_name(stem)
        if name is None:
            raise DoppelError(f"tensor {key} has no GGUF name for {family.arch}; export with "
                              "--format hf instead")
        tensor_kind = kind if tensor.dim() >= 2 else "F32"  # norms stay F32, as llama.cpp does
        if tensor_kind == "Q8_0" and tensor.shape[-1] % QUANT_BLOCK:
            raise DoppelError(f"q8_0 needs rows divisible by {QUANT_BLOCK}, but {key} has rows of "
                              f"{tensor.shape[-1]}; use --quant none")
        plans.append(TensorPlan(f"{name}.{suffix}", key, tuple(tensor.shape), tensor_kind))
    return plans


def _permute(weights, heads: int):
    """Rows of q/k from transformers' rotary layout to llama.cpp's (convert_hf_to_gguf.permute)."""
    shape = weights.shape
    grouped = weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])
    return grouped.swapaxes(1, 2).reshape(shape)


def _array(plan: TensorPlan, tensor, config, family: Family):
    """The tensor's bytes as the file stores them (numpy)."""
    import numpy as np
    import torch
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import quantize

    tensor = tensor.detach().to(torch.float32)
    if family.permute_qk and plan.name.endswith(("attn_q.weight", "attn_k.weight")):
        kv = plan.name.endswith("attn_k.weight")
        tensor = _permute(tensor, config.num_key_value_heads if kv else config.num_attention_heads)
    if family.norm_offset and plan.name.endswith("norm.weight"):
        tensor = tensor + family.norm_offset
    if plan.kind == "BF16":
        return tensor.to(torch.bfloat16).contiguous().view(torch.int16).numpy().view(np.uint8)
    array = tensor.contiguous().numpy()
    if plan.kind == "F16":
        return array.astype(np.float16)
    if plan.kind == "Q8_0":
        return quantize(array, GGMLQuantizationType.Q8_0)
    return array


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    params = params.get("full_attention", params)  # Gemma 3: per attention type
    rope_type = params.get("rope_type", "default")
    if rope_type != "default":
        raise DoppelError(f"rope scaling {rope_type!r} cannot be exported to GGUF yet; "
                          "use --format hf")
    return float(params.get("rope_theta") or getattr(config, "rope_theta", 10000.0))


def add_hparams(writer, config, name: str, kind: str, vocab_size: int) -> None:
    family = family_of(config.model_type)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    if family.arch == "llama":
        writer.add_rope_dimension_count(head_dim)
        writer.add_vocab_size(vocab_size)
    if family.arch == "gemma3":
        writer.add_sliding_window(config.sliding_window)
    writer.add_file_type(_FILE_TYPES[kind])


def write_gguf(path: Path, state: dict, config, plans: list[TensorPlan],
               metadata: Callable[[object], None], advance: Callable[[int], None]) -> None:
    """Write the file: header, metadata (via `metadata(writer)`), tensor infos, then tensors."""
    import gguf
    import numpy as np

    family = family_of(config.model_type)
    writer = gguf.GGUFWriter(path=None, arch=family.arch)
    metadata(writer)
    for plan in plans:
        if plan.kind in ("F32", "F16"):
            dtype = np.float32 if plan.kind == "F32" else np.float16
            writer.add_tensor_info(plan.name, plan.shape, np.dtype(dtype), plan.nbytes)
        else:
            raw = gguf.GGMLQuantizationType[plan.kind]
            block, size = gguf.GGML_QUANT_SIZES[raw]
            byte_shape = (*plan.shape[:-1], plan.shape[-1] // block * size)
            writer.add_tensor_info(plan.name, byte_shape, np.dtype(np.uint8), plan.nbytes, raw)
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for plan, array in zip(plans, _arrays(plans, state, config, family), strict=True):
        writer.write_tensor_data(array)
        advance(plan.nbytes)
    writer.close()


def _arrays(plans, state, config, family) -> Iterator:
    for plan in plans:
        yield _array(plan, state[plan.source], config, family)
