"""The Go text/template subset that checks Ollama TEMPLATEs: Go's semantics, or an error."""

from __future__ import annotations

import pytest

from doppel.export.gotemplate import TemplateError, render

MESSAGES = {"Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}]}


def test_trim_markers_eat_whitespace_on_their_side_only():
    assert render("a  {{- \"b\" }}  c", {}) == "ab  c"
    assert render("a  {{ \"b\" -}}  c", {}) == "a  bc"
    assert render("a \n {{- \"b\" -}} \n c", {}) == "abc"


def test_range_sets_dot_and_variables():
    assert render("{{ range .Messages }}[{{ .Role }}:{{ .Content }}]{{ end }}", MESSAGES) == (
        "[user:hi][assistant:yo]")
    assert render("{{ range $i, $m := .Messages }}{{ $i }}={{ $m.Content }};{{ end }}",
                  MESSAGES) == "0=hi;1=yo;"
    assert render("{{ range .Missing }}x{{ end }}", {"Missing": []}) == ""


def test_if_else_if_else_and_comparisons():
    template = ('{{ range .Messages }}{{ if eq .Role "user" }}U{{ else if ne .Role "x" }}A'
                "{{ else }}X{{ end }}{{ end }}")
    assert render(template, MESSAGES) == "UA"
    assert render('{{ if and .A .B }}both{{ else }}not{{ end }}', {"A": "x", "B": ""}) == "not"
    template = "{{ if or .A .B }}one{{ end }}{{ if not .B }}!{{ end }}"
    assert render(template, {"A": "x", "B": ""}) == "one!"


def test_assignment_inside_range_updates_the_outer_variable():
    # Go >= 1.11: `=` assigns the nearest declaration, so state survives loop iterations
    template = '{{ $last := "" }}{{ range .Messages }}{{ $last = .Role }}{{ end }}{{ $last }}'
    assert render(template, MESSAGES) == "assistant"


def test_string_literals_use_go_escapes():
    assert render('{{ "a\\n\\"b\\"" }}', {}) == 'a\n"b"'


@pytest.mark.parametrize("template", [
    "{{ if .A }}unclosed",
    "{{ end }}",
    "{{ len .Messages }}",
    "{{ $x = 1 }}",
    "{{ .Missing }}",
    "{{ printf \"%s\" .A }}",
])
def test_anything_outside_the_subset_is_an_error(template):
    with pytest.raises(TemplateError):
        render(template, {"A": "x", "Messages": []})
