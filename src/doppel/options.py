"""Typed option sets: each option is declared once, as a pydantic field, and that one declaration
makes the typer flag, its --help line, the YAML key (where a recipe has one) and the check.

    class ServeOptions(Options):
        port: int = option(8000, "Port to listen on.", ge=1, le=65535)

    @command_from_options
    def command(options: ServeOptions) -> None: ...   # typer sees --port, its help, its default

The field's type gives the flag's type (a Literal lists the allowed values), its default the
default shown in --help, its description the help text, its constraints (ge, le, ...) and the
model's validators the checks. A nested Options field (SamplingParams inside ChatOptions) adds
its flags flat. A bad value or combination raises one DoppelError line naming the flag, when the
options are built: before any model loads.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from doppel.errors import DoppelError

_CLI = "cli"  # the key of a field's json_schema_extra that holds its command-line shape


def option(default: Any = ..., help: str = "", *, flags: tuple[str, ...] = (),
           argument: bool = False, metavar: str | None = None, alias: str | None = None,
           envvar: str | None = None, flag: bool = True, **constraints: Any) -> Any:
    """A field with its help text and command-line shape.

    flags: the flag names when not `--field-name` (a bool gets `--x/--no-x` unless flags say
    otherwise); argument: a positional argument; alias: a hidden second flag, kept so an old
    spelling (`--dtype`) still works; envvar: read when the flag is absent; flag=False: a setting
    for recipe files only; constraints: pydantic's (ge, le, gt, min_length, ...).
    """
    cli = {"flags": list(flags), "argument": argument, "metavar": metavar, "alias": alias,
           "envvar": envvar, "flag": flag}
    return Field(default, description=help, json_schema_extra={_CLI: cli}, **constraints)


# --- options every command spells the same way --------------------------------------------

def force_option(what: str = "the output folder") -> Any:
    """`--force`: replace what the command writes (one spelling, no --no-force)."""
    return option(False, f"Replace {what} if it exists.", flags=("--force",))


def output_option(help: str, default: Any = ..., alias: str | None = None) -> Any:
    """`-o/--output`: where the command writes (alias: a hidden old spelling, export's --out)."""
    return option(default, help, flags=("-o", "--output"), alias=alias)


def precision_option(what: str, note: str = "", alias: str | None = None) -> Any:
    """`--precision auto|bf16|fp32`: one vocabulary, one default (hardware.Precision); the field's
    type is hardware.PrecisionWord, which also reads the old dtype names."""
    from doppel.hardware import PRECISION_HELP

    return option("auto", f"{what} in {PRECISION_HELP}{note}.", alias=alias)


class OptionError(DoppelError):
    """A bad option value, worded for the command line; `build` rewords it for a recipe file."""

    def __init__(self, model: type[BaseModel], error: ValidationError) -> None:
        super().__init__(describe(model, error))
        self.model, self.error = model, error


class Options(BaseModel):
    """A command's settings: typed, validated on construction (also when nested), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise OptionError(type(self), error) from None

    def replace(self, **changes: Any) -> typing.Self:
        """A copy with some fields changed, validated again (model_copy would not check)."""
        return type(self)(**{**dict(self), **changes})


def variant(model: type[Options], name: str, **defaults: Any) -> type[Options]:
    """`model` with other defaults (a value, or (value, help) to reword the help too), for a
    command with a stated reason to differ; the fields, types and checks stay the model's."""
    fields: dict[str, Any] = {}
    for key, value in defaults.items():
        default, help = value if isinstance(value, tuple) else (value, None)
        info = model.model_fields[key]
        changed = copy.copy(info)
        changed.default = default
        if help is not None:
            changed.description = help
        fields[key] = (info.annotation, changed)
    from pydantic import create_model

    return create_model(name, __base__=model, __module__=model.__module__, **fields)


# --- walking a model's fields --------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    """One option of a (possibly nested) model: where it sits and how it looks on the CLI."""

    path: tuple[str, ...]
    info: FieldInfo

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def cli(self) -> dict[str, Any]:
        extra = self.info.json_schema_extra
        return (extra or {}).get(_CLI, {}) if isinstance(extra, dict) else {}

    @property
    def argument(self) -> bool:
        return bool(self.cli.get("argument"))

    @property
    def flags(self) -> list[str]:
        """The flag names a user types: declared ones, else --name (and --no-name for a bool)."""
        if self.argument:
            return []
        declared = [part for flag in self.cli.get("flags") or [] for part in flag.split("/")]
        if declared:
            return declared
        dashed = "--" + self.name.replace("_", "-")
        return [dashed, "--no-" + dashed[2:]] if self.kind is bool else [dashed]

    @property
    def kind(self) -> Any:
        """The field's type without None (`int | None` -> int)."""
        args = [a for a in get_args(self.info.annotation) if a is not type(None)]
        if get_origin(self.info.annotation) in (typing.Union, _UnionType) and len(args) == 1:
            return args[0]
        return self.info.annotation

    @property
    def required(self) -> bool:
        return self.info.is_required()


_UnionType = type(int | None)


def _is_options(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every option of `model`, nested option sets flattened, in declaration order."""
    for name, info in model.model_fields.items():
        if _is_options(info.annotation):
            yield from leaves(info.annotation, (*prefix, name))
        else:
            yield Leaf((*prefix, name), info)


def flag_of(model: type[BaseModel], path: tuple[str | int, ...]) -> str:
    """How the user spells the option at `path`: its first flag, or its name for an argument."""
    names = tuple(str(part) for part in path)
    for leaf in leaves(model):
        if leaf.path == names[: len(leaf.path)]:
            long = [flag for flag in leaf.flags if flag.startswith("--")]
            return (long or leaf.flags or [leaf.name.upper()])[0]
    return ".".join(names)


def describe(model: type[BaseModel], error: ValidationError, source: str | None = None,
             within: tuple[str, ...] = ()) -> str:
    """A validation error as one line: the flag (or, for a recipe file, the key) and the problem.
    `within`: where in `model` the option set that refused sits (a recipe's block)."""
    first = error.errors()[0]
    loc = (*within, *first.get("loc", ()))
    message = first["msg"].removeprefix("Value error, ")
    if not loc:  # a model validator: a combination of options
        return message + (f" (in {source})" if source else "")
    if source:
        key = ".".join(str(part) for part in loc)
        if first["type"] == "extra_forbidden":
            return f"unknown key {key!r} in {source}"
        return f"bad setting {key} in {source}: {message}"
    if first["type"] == "extra_forbidden":
        return f"unknown option {loc[-1]!r}"
    return f"{flag_of(model, loc)} {first.get('input')!r}: {message}"


def build(model: type[BaseModel], values: Mapping[str, Any], source: str | None = None,
          flags: Collection[str] = ()) -> Any:
    """`model` from nested values (a recipe, flags), any error as one DoppelError line. `flags`:
    the top-level keys whose values came from flags over the file `source` (named as flags)."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        raise DoppelError(describe(model, error, _source_of(error, source, flags))) from None
    except OptionError as error:  # an Options model (or one nested in it) refused a value
        within = _path_of(model, error.model)
        if source or within:
            where = _source_of(error.error, source, flags, within)
            raise DoppelError(describe(model if within else error.model, error.error, where,
                                       within)) from None
        raise


def _path_of(model: type[BaseModel], nested: type[BaseModel]) -> tuple[str, ...]:
    """Where the option set `nested` sits in `model` (() for the model itself or not found)."""
    for name, info in model.model_fields.items():
        if info.annotation is nested:
            return (name,)
    return ()


def _source_of(error: ValidationError, source: str | None, flags: Collection[str],
               within: tuple[str, ...] = ()) -> str | None:
    """The file to name for this error, or None when the bad value came from a flag (`flags`:
    the given flags' keys, or their nested values where a block's flag was given)."""
    given: Any = flags
    for part in (*within, *error.errors()[0].get("loc", ())):
        if not isinstance(given, Collection) or part not in given:
            return source
        given = given[part] if isinstance(given, Mapping) else None
    return None


def nest(model: type[BaseModel], flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat option values (as typer passes them; None = not given) -> nested field values."""
    nested: dict[str, Any] = {}
    for leaf in leaves(model):
        value = flat.get(leaf.name) if leaf.cli.get("flag") is not False else None
        if value is None or (isinstance(value, list) and not value and not leaf.required):
            continue
        target = nested
        for part in leaf.path[:-1]:
            target = target.setdefault(part, {})
        target[leaf.name] = value
    return nested


# --- typer parameters from a model ---------------------------------------------------------

class OptionFlags:
    """`given: OptionFlags[TrainConfig]`: the flags of TrainConfig, handed over as the nested dict
    of the ones the user gave (for a command that layers them over a recipe, as train does).
    --help shows no defaults for them: the recipe gives those."""

    def __class_getitem__(cls, model: type[BaseModel]) -> Any:
        return Annotated[dict, _FlagsOf(model)]


@dataclass(frozen=True)
class _FlagsOf:
    model: type[BaseModel]


def _shown_default(leaf: Leaf) -> str | bool:
    default = leaf.info.default
    if leaf.required or default is None or default == () or default == []:
        return False
    if isinstance(default, bool):
        off = [flag for flag in leaf.flags if flag.startswith("--no-")]
        return leaf.flags[0] if default else (off[0] if off else False)
    return str(default.value if hasattr(default, "value") else default)


def _typer_type(leaf: Leaf) -> Any:
    kind = leaf.kind
    if get_origin(kind) is tuple:  # tuple[str, ...] in the model is a repeatable flag
        kind = list[get_args(kind)[0]]
    if get_origin(kind) is typing.Literal:  # checked by the model, so a bad one is one line
        kind = str
    return kind


def _metavar(leaf: Leaf) -> str | None:
    """The declared metavar, or a Literal's values (`lora|qlora|full`) as click's Choice shows."""
    if leaf.cli.get("metavar") or get_origin(leaf.kind) is not typing.Literal:
        return leaf.cli.get("metavar")
    return "|".join(str(value) for value in get_args(leaf.kind))


def typer_parameters(model: type[BaseModel], show_defaults: bool = True) -> list[inspect.Parameter]:
    """One typer parameter per option (plus a hidden one per alias); options default to None, so
    the command can tell a flag the user gave from a default (recipes and presets layer under).
    show_defaults=False: --help shows none (where a recipe, not the model, gives the defaults)."""
    import typer
    from rich.markup import escape

    params = []
    for leaf in leaves(model):
        if leaf.cli.get("flag") is False:
            continue
        help = escape(leaf.info.description or "")
        kind = _typer_type(leaf)
        if leaf.argument:
            info = typer.Argument(help=help, metavar=_metavar(leaf), show_default=False)
            default = inspect.Parameter.empty if leaf.required else leaf.info.default
            params.append(inspect.Parameter(leaf.name, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[kind, info], default=default))
            continue
        decls = leaf.cli.get("flags") or []
        shown = _shown_default(leaf) if show_defaults else False
        info = typer.Option(*decls, help=help, show_default=shown,
                            metavar=_metavar(leaf), envvar=leaf.cli.get("envvar"))
        # a required flag with an alias is checked in _given: either spelling may fill it
        required = leaf.required and not leaf.cli.get("alias")
        annotation = Annotated[kind if required else kind | None, info]
        default = inspect.Parameter.empty if required else None
        params.append(inspect.Parameter(leaf.name, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=annotation, default=default))
        if leaf.cli.get("alias"):
            hidden = typer.Option(leaf.cli["alias"], hidden=True)
            params.append(inspect.Parameter(_alias_name(leaf), inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[str | None, hidden], default=None))
    return params


def _alias_name(leaf: Leaf) -> str:
    return f"{leaf.name}__alias"


def _given(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """The nested values the user gave, an alias filling in for its flag when that is absent."""
    for leaf in leaves(model):
        if leaf.cli.get("alias"):
            alias = values.pop(_alias_name(leaf), None)
            if values.get(leaf.name) is None:
                values[leaf.name] = alias
            if values[leaf.name] is None and leaf.required:
                raise DoppelError(f"Missing option {' / '.join(map(repr, leaf.flags))}.")
    return nest(model, values)


def command_from_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A typer command from `fn`: a parameter annotated with an Options model (or
    OptionFlags[model]) becomes that model's flags; the others stay as they are."""
    signature = inspect.signature(fn, eval_str=True)
    hints = typing.get_type_hints(fn, include_extras=True)
    expanded: dict[str, tuple[type[BaseModel], bool, list[str]]] = {}  # (model, build it, flags)
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        hint = hints.get(param.name, param.annotation)
        flags_of = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, _FlagsOf)),
                        None)
        if flags_of or _is_options(hint):
            model = flags_of.model if flags_of else hint
            generated = typer_parameters(model, show_defaults=flags_of is None)
            expanded[param.name] = (model, flags_of is None, [p.name for p in generated])
            params += generated
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hint))
    names = [p.name for p in params]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"{fn.__qualname__}: options declared twice: {', '.join(clashes)}")

    @functools.wraps(fn)
    def command(**values: Any) -> Any:
        calls: dict[str, Any] = {}
        for name, (model, make, own) in expanded.items():
            mine = {key: values.pop(key) for key in own}
            given = _given(model, mine)
            calls[name] = build(model, given) if make else given
        return fn(**values, **calls)

    del command.__wrapped__  # typer must read the generated signature, not fn's
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.options = {name: model for name, (model, *_) in expanded.items()}  # type: ignore
    return command
