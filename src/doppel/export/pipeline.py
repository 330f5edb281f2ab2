"""`doppel export`: a run folder as artefacts other tools load as they are.

- hf: the LoRA merged into the base weights, a standard Hugging Face folder whose chat_template
  renders doppel's format (AutoModelForCausalLM + apply_chat_template, vLLM);
- gguf: one .gguf file (llama.cpp, LM Studio, text-generation-webui), template and end token inside;
- ollama: a folder with the GGUF and a Modelfile.

Everything a user can get wrong is checked before the model loads or a byte is written; outputs
appear atomically.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationInfo, field_validator, model_validator

from doppel.errors import DoppelError
from doppel.export import templates
from doppel.options import Options, force_option, option, output_option
from doppel.runs import ADAPTER_DIR, MODEL_DIR, TOKENIZER_DIR, RunInfo, read_run_info

FORMATS = ("hf", "gguf", "ollama")
DTYPES = ("auto", "f16", "bf16", "f32")
QUANTS = ("none", "q8_0")
GGUF_NAME = "model.gguf"
MODELFILE = "Modelfile"
SPACE_MARGIN = 64 << 20  # tokenizer files, metadata and filesystem slack


class ExportOptions(Options):
    """`doppel export`'s choices, checked when built (before the model loads)."""

    format: str = option("gguf", f"What to write: {' | '.join(FORMATS)}.", flags=("--format",))
    # hf: bf16; gguf/ollama: f16 (llama.cpp computes in f32 either way)
    dtype: str = option("auto", f"Weight type: {' | '.join(DTYPES)} (auto: bf16 for hf, f16 for "
                        "gguf).")
    quant: str = option("none", f"GGUF quantisation: {' | '.join(QUANTS)} (q8_0 halves an f16 "
                        "file).")
    persona: str | None = option(None, "Whom the exported model plays (default: the exporting "
                                 "user).", flags=("--as",))
    force: bool = force_option("what -o names")
    progress: bool = option(True, "Show a progress bar.", flag=False)

    @field_validator("format", "dtype", "quant")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        allowed = {"format": FORMATS, "dtype": DTYPES, "quant": QUANTS}[info.field_name]
        if value not in allowed:
            raise ValueError(f"unknown {info.field_name} {value!r}; use one of "
                             f"{', '.join(allowed)}")
        return value

    @model_validator(mode="after")
    def _quant_needs_gguf(self) -> ExportOptions:
        if self.format == "hf" and self.quant != "none":
            raise ValueError("--quant applies to gguf and ollama exports; an hf folder keeps "
                             "floating-point weights (choose them with --dtype)")
        return self


class ExportCommand(Options):
    """`doppel export`'s run and destination, beside how (ExportOptions)."""

    run_dir: Path = option(help="A run folder from `doppel train`.", argument=True,
                           metavar="RUN_DIR")
    # every command says -o/--output; export said --out before, which still works (hidden)
    output: Path = output_option("Where to write: a folder (hf, ollama) or a .gguf file (gguf).",
                                 alias="--out")


@dataclass
class ExportResult:
    path: Path
    bytes: int
    seconds: float
    persona: str
    partner: str
    next_steps: list[str] = field(default_factory=list)


def check_run(run_dir: Path) -> RunInfo:
    """A finished run folder with its weights and tokenizer, or a one-line error."""
    info = read_run_info(run_dir)
    if not info.finished:
        raise DoppelError(f"{run_dir} is an unfinished run (training stopped before the end); "
                          "finish it with `doppel train ... --resume` first")
    weights = run_dir / (MODEL_DIR if info.method == "full" else ADAPTER_DIR)
    for needed in (weights, run_dir / TOKENIZER_DIR):
        if not needed.is_dir() or not any(needed.iterdir()):
            raise DoppelError(f"{run_dir} is incomplete: {needed.name}/ is missing or empty")
    return info


def model_type(run_dir: Path, info: RunInfo) -> str:
    """The run's transformers model_type, read from config.json without loading weights."""
    from doppel.models import resolve_model

    folder = run_dir / MODEL_DIR if info.method == "full" else resolve_model(info.base_model)
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]


def check_space(target: Path, need: int) -> None:
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < need + SPACE_MARGIN:
        raise DoppelError(f"not enough disk space for {target}: it needs about {_size(need)}, "
                          f"{folder} has {_size(free)} free")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def gguf_kind(options: ExportOptions) -> str:
    from doppel.export.to_gguf import GGUF_DTYPES

    if options.quant != "none":
        return GGUF_DTYPES[options.quant]
    return GGUF_DTYPES["f16" if options.dtype == "auto" else options.dtype]


def ollama_name(persona: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", persona.lower()).strip("-")
    return f"doppel-{slug or 'twin'}"


def export_run(run_dir: Path, out: Path, options: ExportOptions) -> ExportResult:
    """Check everything, load and merge the run, write the chosen format; size and time back."""
    start = time.perf_counter()
    run_dir, out = Path(run_dir), Path(out)
    info = check_run(run_dir)
    if out.exists() and not options.force:
        raise DoppelError(f"{out} already exists; pass --force to replace it")
    if options.format != "hf":
        from doppel.export.to_gguf import family_of

        family_of(model_type(run_dir, info))
    if options.persona and info.speakers and options.persona not in info.speakers:
        raise DoppelError(f"this run cannot play {options.persona!r}; choose one of: "
                          f"{', '.join(info.speakers)}")
    twin = load_twin(run_dir, options.persona)
    write = _HFWriter(twin, options) if options.format == "hf" else _GGUFWriter(twin, options)
    check_space(out, write.size)
    write(out)
    result = ExportResult(out, _disk_size(out), time.perf_counter() - start, twin.persona,
                          twin.partner)
    if options.format == "ollama":
        name = ollama_name(twin.persona)
        result.next_steps = [f"ollama create {name} -f {out / MODELFILE}", f"ollama run {name}"]
    return result


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


@dataclass
class Twin:
    """The merged model in float32 and what the templates need to know about it."""

    model: object
    tokenizer: object
    info: RunInfo
    persona: str
    partner: str
    bos_token: str  # "" unless chatformat starts prompts with BOS
    max_length: int

    def chat_template(self) -> str:
        return templates.jinja_template(self.persona, self.partner, bool(self.bos_token))


def load_twin(run_dir: Path, persona: str | None) -> Twin:
    import torch
    from transformers.utils import logging

    from doppel.infer.engine import Engine
    from doppel.runs import load_run

    logging.disable_progress_bar()  # doppel's own bar and spinner only
    logging.set_verbosity_error()
    engine = Engine(load_run(run_dir, merge=True, dtype=torch.float32))
    name = persona or engine.default_persona
    if not engine.can_play(name):
        raise DoppelError(f"this run cannot play {name!r}; choose one of: "
                          f"{', '.join(engine.personas)}")
    tokenizer = engine.tokenizer
    bos = tokenizer.bos_token if engine.encoder.prefix else ""
    twin = Twin(engine.model, tokenizer, engine.info, name, engine.default_partner(name),
                bos or "", engine.max_length)
    templates.check_templates(twin.chat_template(), templates.ollama_template(name, twin.partner),
                              name, twin.partner, twin.bos_token)
    return twin


class _Writer:
    """A sized write: `size` is known (for the disk check) before `__call__` writes anything."""

    size: int = 0


class _HFWriter(_Writer):
    def __init__(self, twin: Twin, options: ExportOptions) -> None:
        import torch

        self.twin, self.options = twin, options
        name = "bf16" if options.dtype == "auto" else options.dtype
        self.dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[name]
        width = torch.finfo(self.dtype).bits // 8
        self.size = sum(p.numel() for p in twin.model.state_dict().values()) * width

    def __call__(self, out: Path) -> None:
        from doppel.atomic import atomic_dir

        with atomic_dir(out, force=self.options.force) as tmp, _spinner(
                self.options.progress, f"writing {out}"):
            write_hf(tmp, self.twin, self.dtype)


def write_hf(folder: Path, twin: Twin, dtype) -> None:
    """save_pretrained of the merged model with the chat template and doppel's generation
    defaults (stop on the chat tokens, doppel's sampling)."""
    from transformers import GenerationConfig

    from doppel.chatformat import IM_END, IM_START
    from doppel.infer.sampling import SamplingParams

    defaults = SamplingParams()
    tokenizer = twin.tokenizer
    stops = [tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(IM_START)]
    model = twin.model.to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=defaults.temperature,
        top_p=defaults.top_p, top_k=defaults.top_k,
        repetition_penalty=defaults.repetition_penalty, max_new_tokens=defaults.max_new_tokens)
    model.save_pretrained(folder, max_shard_size="2GB")
    tokenizer.chat_template = twin.chat_template()
    tokenizer.save_pretrained(folder)


class _GGUFWriter(_Writer):
    def __init__(self, twin: Twin, options: ExportOptions) -> None:
        from doppel.export.to_gguf import plan_tensors

        self.twin, self.options = twin, options
        self.kind = gguf_kind(options)
        self.state = twin.model.state_dict()
        self.plans = plan_tensors(self.state, twin.model.config, self.kind)
        self.size = sum(plan.nbytes for plan in self.plans) + (4 << 20)

    def __call__(self, out: Path) -> None:
        from doppel.atomic import atomic_dir, atomic_path

        if self.options.format == "gguf":
            with atomic_path(out, force=self.options.force) as tmp:
                self.write_file(tmp)
            return
        with atomic_dir(out, force=self.options.force) as tmp:
            self.write_file(tmp / GGUF_NAME)
            (tmp / MODELFILE).write_text(modelfile(self.twin), encoding="utf-8")

    def write_file(self, path: Path) -> None:
        from doppel.chatformat import IM_END
        from doppel.export.ggufinfo import add_run_info
        from doppel.export.to_gguf import add_hparams, write_gguf
        from doppel.export.vocab import add_vocab, build_vocab

        twin, config = self.twin, self.twin.model.config
        vocab_size = twin.model.get_input_embeddings().weight.shape[0]
        eot = twin.tokenizer.convert_tokens_to_ids(IM_END)
        vocab = build_vocab(twin.tokenizer, vocab_size, bool(twin.bos_token), eot)

        def metadata(writer) -> None:
            add_hparams(writer, config, f"doppel {twin.persona}", self.kind, vocab_size)
            add_vocab(writer, vocab, twin.chat_template())
            add_run_info(writer, twin.info, twin.max_length)

        with _bar(self.options.progress, f"writing {path.name}", self.size) as advance:
            write_gguf(path, self.state, config, self.plans, metadata, advance)


def modelfile(twin: Twin) -> str:
    """Ollama's recipe: the GGUF, the TEMPLATE of doppel's format, its stops and sampling."""
    from doppel.chatformat import IM_END, IM_START
    from doppel.infer.sampling import SamplingParams

    template = templates.ollama_template(twin.persona, twin.partner)
    if '"""' in template:
        raise DoppelError('a speaker name holds """, which a Modelfile cannot quote; '
                          "pick another persona with --as or use --format gguf")
    defaults = SamplingParams()
    return "\n".join([
        f"# doppel export: the model plays {twin.persona}; you write as {twin.partner}",
        f"FROM ./{GGUF_NAME}",
        f'TEMPLATE """{template}"""',
        f'PARAMETER stop "{IM_END}"',
        f'PARAMETER stop "{IM_START}"',
        f"PARAMETER temperature {defaults.temperature}",
        f"PARAMETER top_p {defaults.top_p}",
        f"PARAMETER top_k {defaults.top_k}",
        f"PARAMETER repeat_penalty {defaults.repetition_penalty}",
        f"PARAMETER num_predict {defaults.max_new_tokens}",
        f"PARAMETER num_ctx {twin.max_length}",
        "",
    ])


def _spinner(enabled: bool, text: str):
    if not enabled:
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text, spinner="dots")


class _bar:
    """A rich progress bar over bytes written, or nothing; yields an `advance(bytes)` callable."""

    def __init__(self, enabled: bool, text: str, total: int) -> None:
        self.enabled, self.text, self.total = enabled, text, total

    def __enter__(self):
        if not self.enabled:
            return lambda _: None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self.progress = Progress("{task.description}", BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=True)
        self.progress.__enter__()
        task = self.progress.add_task(self.text, total=self.total)
        return lambda done: self.progress.advance(task, done)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)
