"""A Hugging Face tokenizer as GGUF tokenizer metadata (llama.cpp's keys), chat tokens included.

Two shapes cover every family doppel trains: byte-level BPE (SmolLM2, Llama 3, Qwen: GGUF model
"gpt2", with merges and a pre-tokenizer name llama.cpp knows) and sentencepiece-style BPE with byte
fallback (Mistral, Gemma: GGUF model "llama", with scores). Added special tokens, `<|im_start|>`
and `<|im_end|>` among them, are CONTROL tokens, so both llama.cpp and transformers keep them whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from doppel.errors import DoppelError

# the pre-tokenizer regexes of tokenizer.json -> llama.cpp's name for them (llama-vocab.cpp)
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS = {_QWEN2: "qwen2", _LLAMA3: "llama-bpe"}
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")

# gguf.TokenType values (kept literal so this module imports without gguf)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class GGUFVocab:
    model: str  # "gpt2" | "llama"
    pre: str
    tokens: list[str]
    token_types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    special_ids: dict[str, int] = field(default_factory=dict)  # bos, eos, unk, pad, eot
    add_bos: bool = False
    add_space_prefix: bool = False  # sentencepiece's dummy prefix ("hi" -> "▁hi"), as Mistral has


def _pre_tokenizer_name(spec: dict) -> str:
    """llama.cpp's pre-tokenizer for a byte-level tokenizer.json's pre_tokenizer section."""
    parts = spec.get("pretokenizers", [spec]) if spec else []
    for part in parts:
        pattern = (part.get("pattern") or {}).get("Regex")
        if part.get("type") == "Split" and pattern:
            if pattern in PRE_TOKENIZERS:
                return PRE_TOKENIZERS[pattern]
            raise DoppelError("this tokenizer splits text in a way llama.cpp's GGUF format has no "
                              "name for; export it with --format hf instead")
    digits = any(p.get("type") == "Digits" and p.get("individual_digits") for p in parts)
    return "smollm" if digits else "gpt-2"


def build_vocab(tokenizer, vocab_size: int, add_bos: bool, eot_id: int) -> GGUFVocab:
    """The GGUF vocabulary of a fast tokenizer, padded with unused tokens to the model's rows."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "BPE":
        raise DoppelError(f"a {model.get('type')} tokenizer cannot be exported to GGUF yet; "
                          "export with --format hf instead")
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if len(by_id) > vocab_size:
        raise DoppelError(f"the tokenizer has {len(by_id)} tokens but the model only "
                          f"{vocab_size} embedding rows; the run folder is inconsistent")
    added = {item["id"]: item for item in spec.get("added_tokens", [])}
    byte_level = not model.get("byte_fallback")
    tokens, types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(UNUSED)
            continue
        tokens.append(token)
        types.append(_token_type(index, token, added, tokenizer.unk_token_id, byte_level))
    vocab = GGUFVocab(model="gpt2" if byte_level else "llama", pre="default", tokens=tokens,
                      token_types=types, add_bos=add_bos, add_space_prefix=_prefixes(spec))
    if byte_level:
        vocab.pre = _pre_tokenizer_name(spec.get("pre_tokenizer") or {})
        vocab.merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    else:
        # sentencepiece BPE merges in vocabulary order, which a falling score reproduces
        vocab.scores = [-float(index) for index in range(vocab_size)]
    ids = {"bos": tokenizer.bos_token_id, "unk": tokenizer.unk_token_id,
           "pad": tokenizer.pad_token_id, "eos": eot_id, "eot": eot_id}
    vocab.special_ids = {name: value for name, value in ids.items() if value is not None}
    return vocab


def _prefixes(spec: dict) -> bool:
    """Whether the tokenizer puts "▁" before the text (a Prepend normalizer or a Metaspace)."""
    text = json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer")])
    metaspace = '"Metaspace"' in text and '"prepend_scheme": "never"' not in text
    return '"Prepend"' in text or metaspace


def _token_type(index: int, token: str, added: dict, unk_id, byte_level: bool) -> int:
    if index in added:
        return CONTROL if added[index].get("special") else USER_DEFINED
    if index == unk_id:
        return UNKNOWN
    if not byte_level and _BYTE_TOKEN.fullmatch(token):
        return BYTE
    return NORMAL


def add_vocab(writer, vocab: GGUFVocab, chat_template: str) -> None:
    """Write the vocabulary, special ids and chat template into a GGUFWriter."""
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id,
              "eot": writer.add_eot_token_id}
    for name, token_id in vocab.special_ids.items():
        adders[name](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(vocab.add_space_prefix)
    writer.add_chat_template(chat_template)
