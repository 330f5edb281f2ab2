"""The option schema: every command's flags, help and checks come from one typed declaration."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from rich.markup import escape

from builders import run_cli
from doppel.cli import COMMANDS, app
from doppel.errors import DoppelError
from doppel.infer.sampling import SamplingParams
from doppel.options import (
    OptionFlags,
    Options,
    build,
    command_from_options,
    leaves,
    option,
    variant,
)

SCHEMA_COMMANDS = ["chat", "serve", "eval", "compare", "demo", "sample-export", "bot", "train",
                   "prepare", "export", "blindtest", "memory"]


def _click_command(name: str):
    return typer.main.get_command(app).commands[name]


def _module_command(name: str):
    import importlib

    return importlib.import_module(f"doppel.commands.{COMMANDS[name]}").command


@pytest.mark.parametrize("name", SCHEMA_COMMANDS)
def test_each_commands_flags_are_its_schema(name, monkeypatch, capsys):
    """Every field is a flag (or argument) with the field's help; every other flag is a
    parameter the command declares itself; --help shows them all."""
    models = _module_command(name).options
    assert models, f"doppel {name} is not built from an option schema"
    click = _click_command(name)
    by_name = {param.name: param for param in click.params}
    own = set(inspect.signature(_module_command(name)).parameters) - {
        leaf.name for model in models.values() for leaf in leaves(model)}
    schema_names = set()
    flagged = {leaf.name for model in models.values() for leaf in leaves(model)
               if leaf.cli.get("flag") is not False}
    for model in models.values():
        for leaf in leaves(model):
            if leaf.cli.get("flag") is False:  # a recipe-only setting (train's prefer: block
                assert leaf.name not in by_name or leaf.name in flagged  # reuses some names)
                continue
            param = by_name[leaf.name]
            schema_names.add(leaf.name)
            assert [*param.opts, *getattr(param, "secondary_opts", [])] == leaf.flags or (
                leaf.argument and param.param_type_name == "argument")
            # escaped: typer renders rich markup, and prepare's help says [photo] and [url]
            assert param.help == escape(leaf.info.description) if leaf.flags else True
            if leaf.cli.get("alias"):
                schema_names.add(f"{leaf.name}__alias")
                assert by_name[f"{leaf.name}__alias"].hidden
    assert set(by_name) - {"help"} == schema_names | own
    code, out, _ = run_cli([name, "--help"], monkeypatch, capsys)
    assert code == 0
    for model in models.values():
        for leaf in leaves(model):
            shown = leaf.cli.get("flag") is not False or leaf.name in flagged
            assert all(flag in out for flag in leaf.flags) == shown, (name, leaf.flags)


def test_every_command_uses_the_schema():
    """A new command joins SCHEMA_COMMANDS, so the test above checks its flags too."""
    assert {n for n in COMMANDS if getattr(_module_command(n), "options", None)} == set(
        SCHEMA_COMMANDS) == set(COMMANDS)


def test_commands_declare_no_flags_of_their_own_and_spell_shared_ones_alike():
    """Every flag comes from a schema; -o/--output and --force are one declaration each."""
    commands = Path(__file__).resolve().parents[1] / "src" / "doppel" / "commands"
    for path in commands.glob("*.py"):
        assert "typer.Option(" not in path.read_text("utf-8"), path.name
        assert "typer.Argument(" not in path.read_text("utf-8"), path.name
    outputs, forces = set(), set()
    for name in SCHEMA_COMMANDS:
        for model in _module_command(name).options.values():
            for leaf in leaves(model):
                if leaf.name == "output":
                    outputs.add(tuple(leaf.flags))
                if leaf.name == "force":
                    forces.add(tuple(leaf.flags))
    assert outputs == {("-o", "--output")} and forces == {("--force",)}


def test_export_still_takes_its_old_out_flag(monkeypatch, capsys):
    from doppel.export.pipeline import ExportCommand

    leaf = next(leaf for leaf in leaves(ExportCommand) if leaf.name == "output")
    assert leaf.cli["alias"] == "--out"
    for flag in ("--out", "-o", "--output"):
        code, _, err = run_cli(["export", "no-such-run", flag, "x.gguf"], monkeypatch, capsys)
        assert code == 2 and "no-such-run" in err and "Missing option" not in err, err
    code, _, err = run_cli(["export", "no-such-run"], monkeypatch, capsys)
    assert code == 2 and "Missing option '-o' / '--output'." in err, err


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    from doppel import engines

    def refuse(*_):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(engines, "load_engine", refuse)


@pytest.mark.parametrize("args, message", [
    (["chat", "RUN", "--top-p", "1.5"], "--top-p 1.5: Input should be less than or equal to 1"),
    (["chat", "RUN", "--temperature", "-1"], "--temperature -1.0: Input should be greater than"),
    (["serve", "RUN", "--max-length", "8"], "--max-length 8: Input should be greater than"),
    (["serve", "RUN", "--host", "0.0.0.0"], "--host 0.0.0.0 is reachable from other machines"),
    (["serve", "RUN", "--dtype", "fp16"], "--precision 'fp16': Input should be 'auto', 'bf16'"),
    (["train", "DATA", "-o", "RUN", "--method", "lorax"],
     "--method 'lorax': Input should be 'lora', 'qlora' or 'full'"),
    # click's own usage errors take the same one line, with where to look
    (["chat", "RUN", "--top-k", "ten"], "Invalid value for '--top-k'"),
    (["chat", "RUN", "--bogus"], "No such option: --bogus (see `doppel chat -h`)"),
    (["eval", "RUN"], "Missing option '--data'. (see `doppel eval -h`)"),
    (["nosuch"], "No such command 'nosuch'."),
])
def test_bad_options_fail_in_one_line_before_any_model_loads(args, message, no_model_load,
                                                             monkeypatch, capsys):
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 2, out + err
    assert message in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_precision_is_one_word_everywhere_and_old_dtype_names_still_work(monkeypatch, capsys):
    from doppel import engines

    seen = []

    def load(options, *_):
        seen.append(options)
        raise DoppelError("stop here")

    monkeypatch.setattr(engines, "load_engine", load)
    for args, word in ((["--precision", "bf16"], "bf16"), (["--dtype", "float32"], "fp32"),
                       (["--dtype", "bfloat16"], "bf16"), ([], "auto")):
        code, _, err = run_cli(["chat", "RUN", *args], monkeypatch, capsys)
        assert code == 2 and "stop here" in err and seen[-1].precision == word
    code, out, _ = run_cli(["chat", "--help"], monkeypatch, capsys)
    assert "--precision" in out and "--dtype" not in out


def test_auto_precision_is_bf16_where_the_cpu_has_it(monkeypatch):
    from doppel import hardware

    monkeypatch.setattr(hardware, "has_cuda", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert hardware.use_bf16("auto") and hardware.use_bf16("bf16")
    assert not hardware.use_bf16("fp32")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert not hardware.use_bf16("auto") and hardware.use_bf16("bf16")


def test_eval_quick_fills_in_only_what_was_not_given():
    from doppel.eval.options import QUICK, EvalOptions

    quick = EvalOptions(quick=True, max_contexts=4, sampling={"temperature": 0.5})
    assert quick.max_contexts == 4 and quick.top_speakers == QUICK["top_speakers"]
    assert quick.sampling.max_new_tokens == QUICK["max_new_tokens"]
    assert quick.sampling.temperature == 0.5 and quick.sampling.top_p == 0.9
    assert EvalOptions().sampling.max_new_tokens == 64


def test_a_variant_changes_defaults_not_checks():
    from doppel.eval.options import EvalSampling

    assert (EvalSampling().temperature, SamplingParams().temperature) == (0.7, 0.8)
    assert EvalSampling.model_fields["top_p"].description == (
        SamplingParams.model_fields["top_p"].description)
    with pytest.raises(DoppelError, match="--top-p 0"):
        EvalSampling(top_p=0)
    assert EvalSampling(seed=3).replace(seed=4).seed == 4
    with pytest.raises(DoppelError, match="--top-k -1"):
        EvalSampling().replace(top_k=-1)


class _Recipe(Options):
    """A stand-in for a recipe-backed config (train's), to show that path works."""

    steps: int = option(10, "optimizer steps", ge=1)
    method: str = option("lora", "what is trained")
    note: str = option("", "documentation only", flag=False)


def test_flags_layer_over_a_recipe_and_recipe_keys_are_checked():
    seen = {}

    @command_from_options
    def command(recipe: str = "base", given: OptionFlags[_Recipe] = None) -> None:
        seen["config"] = build(_Recipe, {"steps": 5, "method": "full", **given}, recipe)

    cli = typer.Typer()
    cli.command()(command)
    from typer.testing import CliRunner

    assert CliRunner().invoke(cli, ["--steps", "7"]).exit_code == 0
    assert seen["config"] == _Recipe(steps=7, method="full")  # the flag wins, the recipe fills in
    assert CliRunner().invoke(cli, ["--note", "x"]).exit_code == 2  # a recipe-only setting
    assert build(_Recipe, {"note": "x"}, "r.yaml").note == "x"
    with pytest.raises(DoppelError, match=r"unknown key 'stepz' in r.yaml"):
        build(_Recipe, {"stepz": 1}, "r.yaml")
    with pytest.raises(DoppelError, match=r"bad setting steps in r.yaml"):
        build(_Recipe, {"steps": 0}, "r.yaml")


class _Twice(Options):
    seed: int = option(0, "a second seed")
    sampling: SamplingParams = SamplingParams()


def test_an_option_declared_twice_is_refused():
    def command(options: _Twice) -> None: ...

    with pytest.raises(TypeError, match="declared twice: seed"):
        command_from_options(command)


def test_variant_of_a_model_keeps_its_fields():
    sub = variant(_Recipe, "Sub", steps=(3, "fewer steps"))
    assert sub().steps == 3 and sub.model_fields["steps"].description == "fewer steps"
    assert _Recipe().steps == 10 and _Recipe.model_fields["steps"].description == "optimizer steps"


def test_train_flags_override_the_recipe_and_errors_name_the_flag_or_the_file(tmp_path):
    from doppel.train.config import load_config

    assert load_config("cpu-demo", {"max_length": 256}).max_length == 256
    assert load_config("cpu-demo", {}).max_length == 512  # the recipe, not the schema default
    with pytest.raises(DoppelError, match=r"^--lora-r 0: Input should be greater"):
        load_config("cpu-demo", {"lora_r": 0})
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("lora_r: 0\n")
    with pytest.raises(DoppelError, match=r"^bad setting lora_r in .*mine.yaml"):
        load_config(str(recipe), {})
    recipe.write_text("lora_r: 0\n")
    assert load_config(str(recipe), {"lora_r": 4}).lora_r == 4  # the flag replaces the bad key
    recipe.write_text("warmup_ratio: 0.1\nprecision: bf16\n")
    assert load_config(str(recipe), {}).warmup_ratio == 0.1  # a recipe-only setting


def test_train_help_lists_allowed_values_and_no_schema_defaults(monkeypatch, capsys):
    code, out, _ = run_cli(["train", "--help"], monkeypatch, capsys)
    assert code == 0
    assert "lora|qlora|full" in out and "grouped|packed|padded" in out
    assert "auto|bf16|fp32" in out and "default: 1024" not in out  # cpu-demo says 512
    assert "--warmup-ratio" not in out


def test_prepare_repeatable_flags_and_one_way_switches_reach_its_options(monkeypatch, capsys):
    from doppel.commands import prepare

    seen = []
    monkeypatch.setattr(prepare, "print_speakers", lambda exports, options: seen.append(options))
    args = ["prepare", "x.json", "--list-speakers", "--me", "Alex", "--me", "user1",
            "--groups", "--no-mask", "--exclude", "Sam", "--gap", "6h"]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    options = seen[-1]
    assert options.me == ("Alex", "user1") and options.exclude == ("Sam",)
    assert options.groups and not options.mask and options.gap_seconds == 6 * 3600
    code, _, err = run_cli(["prepare", "x.json", "--no-groups"], monkeypatch, capsys)
    assert code == 2 and "No such option" in err  # --groups is a one-way switch, as before
