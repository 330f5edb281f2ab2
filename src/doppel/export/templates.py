"""doppel's chat format as the chat templates other tools read: Jinja (HF, vLLM, llama.cpp) and
Go (Ollama's TEMPLATE). Both render `chatformat.prompt_text` for the same history, which
`check_templates` proves at export time with the same renderers the tests use.

Messages carry who speaks as `name` (OpenAI style) when they can; without a name, "assistant" is
the persona the model plays and any other role is its default partner. Consecutive messages by one
speaker form one burst, joined by MESSAGE_SEP, as `chatformat.group_turns` does. System messages
have no place in doppel's format and are skipped.
"""

from __future__ import annotations

import json

from doppel.chatformat import IM_END, IM_START, MESSAGE_SEP, ChatTurn, group_turns, prompt_text
from doppel.errors import DoppelError


def _literal(text: str) -> str:
    """A double-quoted string literal that Jinja and Go both read back as `text`."""
    return json.dumps(text, ensure_ascii=False)


def jinja_template(persona: str, partner: str, bos: bool) -> str:
    """A Jinja chat_template; `persona` / `partner` can be overridden as template variables."""
    start, end, sep = _literal(IM_START), _literal(f"{IM_END}\n"), _literal(MESSAGE_SEP)
    return (
        f"{{%- set persona = persona if persona is defined else {_literal(persona)} -%}}\n"
        f"{{%- set partner = partner if partner is defined else {_literal(partner)} -%}}\n"
        + ("{{- bos_token -}}\n" if bos else "")
        + '{%- set ns = namespace(prev="") -%}\n'
        '{%- for message in messages if message.role != "system" -%}\n'
        "{%- set speaker = message.name if message.name is defined and message.name else "
        '(persona if message.role == "assistant" else partner) -%}\n'
        "{%- if speaker != ns.prev -%}\n"
        f"{{%- if ns.prev -%}}{{{{ {end} }}}}{{%- endif -%}}\n"
        f'{{{{- {start} + speaker + "\\n" -}}}}\n'
        f"{{%- else -%}}{{{{ {sep} }}}}{{%- endif -%}}\n"
        "{{- message.content -}}\n"
        "{%- set ns.prev = speaker -%}\n"
        "{%- endfor -%}\n"
        f"{{%- if ns.prev -%}}{{{{ {end} }}}}{{%- endif -%}}\n"
        f'{{%- if add_generation_prompt -%}}{{{{ {start} + persona + "\\n" }}}}{{%- endif -%}}\n'
    )


def ollama_template(persona: str, partner: str) -> str:
    """An Ollama TEMPLATE (Go text/template over .Messages with .Role and .Content)."""
    start, end, sep = _literal(IM_START), _literal(f"{IM_END}\n"), _literal(MESSAGE_SEP)
    return (
        '{{- $prev := "" }}\n'
        "{{- range .Messages }}\n"
        '{{- if ne .Role "system" }}\n'
        "{{- if ne .Role $prev }}\n"
        f"{{{{- if $prev }}}}{{{{ {end} }}}}{{{{ end }}}}\n"
        f'{{{{- {start} }}}}{{{{ if eq .Role "assistant" }}}}{{{{ {_literal(persona)} }}}}'
        f'{{{{ else }}}}{{{{ {_literal(partner)} }}}}{{{{ end }}}}{{{{ "\\n" }}}}\n'
        f"{{{{- else }}}}{{{{ {sep} }}}}{{{{ end }}}}\n"
        "{{- .Content }}\n"
        "{{- $prev = .Role }}\n"
        "{{- end }}\n"
        "{{- end }}\n"
        f"{{{{- if $prev }}}}{{{{ {end} }}}}{{{{ end }}}}\n"
        f'{{{{- {start} }}}}{{{{ {_literal(persona)} }}}}{{{{ "\\n" }}}}'
    )


def render_jinja(template: str, messages: list[dict], bos_token: str = "", **variables) -> str:
    """Render a chat_template the way transformers' apply_chat_template does (sandboxed Jinja)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, bos_token=bos_token,
                                            add_generation_prompt=True, **variables)


def render_ollama(template: str, messages: list[dict]) -> str:
    from doppel.export.gotemplate import render

    return render(template, {"Messages": messages})


# a history that exercises every branch: partner first, a burst, the persona, a burst again
_CHECK_HISTORY = ["hey", "are you there?", None, "so", "what's up"]


def check_templates(jinja: str, ollama: str, persona: str, partner: str, bos_token: str) -> None:
    """Raise unless both templates render chatformat's prompt text for a sample history."""
    history: list[tuple[str, str]] = []
    for index, text in enumerate(_CHECK_HISTORY):
        history.append((persona, f"reply {index}") if text is None else (partner, text))
    turns: list[ChatTurn] = group_turns(history)
    expected = prompt_text(turns, persona)
    named = [{"role": "assistant" if s == persona else "user", "name": s, "content": t}
             for s, t in history]
    ollama_messages = [{"Role": m["role"], "Content": m["content"]} for m in named]
    rendered = {
        "chat_template": render_jinja(jinja, named, bos_token).removeprefix(bos_token),
        "Ollama TEMPLATE": render_ollama(ollama, ollama_messages),
    }
    for what, text in rendered.items():
        if text != expected:
            raise DoppelError(f"the exported {what} does not render doppel's chat format "
                              f"({text!r} != {expected!r}); please report this")
