"""A renderer for the small subset of Go's text/template that doppel's Ollama TEMPLATE uses.

Ollama renders a Modelfile's TEMPLATE with Go's text/template. Ollama is not a dependency, so to
prove the TEMPLATE writes exactly chatformat's prompt, the export checks it with this renderer
(and the tests use the same one). It follows Go's semantics for what it accepts and raises on
anything else, so a TEMPLATE can only use what was checked:

- text, `{{ expr }}`, trim markers `{{-` / `-}}` (they eat the whitespace next to them);
- `{{ if cond }} ... {{ else if cond }} ... {{ else }} ... {{ end }}`;
- `{{ range .Field }}` (dot becomes the element) and `{{ range $i, $m := .Field }}`;
- `{{ $x := expr }}` declares, `{{ $x = expr }}` assigns to the nearest declaration;
- expressions: `"string"`, `.`, `.A.B`, `$x`, `$x.A`, and the functions `eq`, `ne`, `not`,
  `and`, `or` applied to those.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s]+')


class TemplateError(ValueError):
    """The template uses something outside the supported subset, or is malformed."""


@dataclass
class _Node:
    kind: str  # text | out | assign | declare | if | range
    arg: Any = None
    body: list[_Node] = field(default_factory=list)
    branches: list[tuple[list[str], list[_Node]]] = field(default_factory=list)
    otherwise: list[_Node] = field(default_factory=list)


def _lex(template: str) -> list[tuple[str, str]]:
    """(kind, value) pieces: ("text", ...) and ("action", ...), trim markers applied."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos:match.start()]
        if match.group(1):
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text))
        pieces.append(("action", match.group(2).strip()))
        if match.group(3):
            pieces.append(("trim", ""))
        pos = match.end()
    tail = template[pos:]
    if pieces and pieces[-1][0] == "trim":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))
    return [p for p in pieces if p[0] == "action" or p[1]]


def _parse(pieces: list[tuple[str, str]], pos: int,
           stop: tuple[str, ...]) -> tuple[list[_Node], int, str]:
    """Nodes until an action starting with a word in `stop`; returns (nodes, next pos, stopper)."""
    nodes: list[_Node] = []
    while pos < len(pieces):
        kind, value = pieces[pos]
        pos += 1
        if kind == "text":
            nodes.append(_Node("text", value))
            continue
        words = _TOKEN.findall(value)
        head = words[0] if words else ""
        if head in stop:
            return nodes, pos, value
        if head == "if":
            node, pos = _parse_if(pieces, pos, words[1:])
            nodes.append(node)
        elif head == "range":
            body, pos, closer = _parse(pieces, pos, ("end",))
            if closer != "end":
                raise TemplateError("range without end")
            nodes.append(_Node("range", words[1:], body))
        elif len(words) >= 3 and head.startswith("$") and words[1] in (":=", "="):
            nodes.append(_Node("declare" if words[1] == ":=" else "assign", (head, words[2:])))
        elif head in ("else", "end"):
            raise TemplateError(f"unexpected {{{{ {value} }}}}")
        else:
            nodes.append(_Node("out", words))
    if stop:
        raise TemplateError(f"missing {{{{ {stop[0]} }}}}")
    return nodes, pos, ""


def _parse_if(pieces, pos, condition: list[str]) -> tuple[_Node, int]:
    node = _Node("if")
    while True:
        body, pos, closer = _parse(pieces, pos, ("else", "end"))
        node.branches.append((condition, body))
        words = _TOKEN.findall(closer)
        if words == ["end"]:
            return node, pos
        if words[:2] == ["else", "if"]:
            condition = words[2:]
            continue
        if words != ["else"]:
            raise TemplateError(f"unsupported {{{{ {closer} }}}}")
        node.otherwise, pos, closer = _parse(pieces, pos, ("end",))
        return node, pos


def _truthy(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    return bool(value)


class _Scope:
    def __init__(self, dot: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": dot}]
        self.dot = dot

    def lookup(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"assignment to undeclared variable {name}")


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise TemplateError(f"no field {name}")
        value = value[name]
    return value


def _operand(word: str, scope: _Scope) -> Any:
    if word.startswith('"'):
        return json.loads(word)
    if word == ".":
        return scope.dot
    if word.startswith("."):
        return _field(scope.dot, word[1:].split("."))
    if word.startswith("$"):
        name, _, rest = word.partition(".")
        value = scope.lookup(name)
        return _field(value, rest.split(".")) if rest else value
    raise TemplateError(f"unsupported operand {word!r}")


_FUNCTIONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truthy(a),
    "and": lambda a, b: b if _truthy(a) else a,
    "or": lambda a, b: a if _truthy(a) else b,
}


def _evaluate(words: list[str], scope: _Scope) -> Any:
    if not words:
        raise TemplateError("empty expression")
    if words[0] in _FUNCTIONS:
        return _FUNCTIONS[words[0]](*(_operand(word, scope) for word in words[1:]))
    if len(words) != 1:
        raise TemplateError(f"unsupported expression {' '.join(words)!r}")
    return _operand(words[0], scope)


def _run(nodes: list[_Node], scope: _Scope, out: list[str]) -> None:
    scope.frames.append({})
    for node in nodes:
        if node.kind == "text":
            out.append(node.arg)
        elif node.kind == "out":
            value = _evaluate(node.arg, scope)
            out.append("" if value is None else str(value))
        elif node.kind in ("declare", "assign"):
            name, words = node.arg
            value = _evaluate(words, scope)
            if node.kind == "declare":
                scope.frames[-1][name] = value
            else:
                scope.assign(name, value)
        elif node.kind == "if":
            chosen = next((body for condition, body in node.branches
                           if _truthy(_evaluate(condition, scope))), node.otherwise)
            _run(chosen, scope, out)
        else:
            _range(node, scope, out)
    scope.frames.pop()


def _range(node: _Node, scope: _Scope, out: list[str]) -> None:
    words = node.arg
    names: list[str] = []
    if ":=" in words:
        split = words.index(":=")
        names = [name.rstrip(",") for name in words[:split]]
        words = words[split + 1:]
    items = _evaluate(words, scope) or []
    outer = scope.dot
    for index, item in enumerate(items):
        scope.dot = item
        values = [index, item] if len(names) == 2 else [item]
        scope.frames.append(dict(zip(names, values, strict=False)))
        _run(node.body, scope, out)
        scope.frames.pop()
    scope.dot = outer


def render(template: str, data: dict[str, Any]) -> str:
    """The template's output for `data` (dot), as Go's text/template would write it."""
    nodes, _, _ = _parse(_lex(template), 0, ())
    out: list[str] = []
    _run(nodes, _Scope(data), out)
    return "".join(out)
