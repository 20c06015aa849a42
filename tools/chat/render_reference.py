#!/usr/bin/env python3
"""Renders chat templates exactly as Hugging Face transformers' apply_chat_template(tokenize=False) does, to write
the expected outputs the Java ChatTemplate is tested against (byte for byte).

The Jinja environment replicates transformers' _compile_jinja_template (chat_template_utils.py): an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the loop-controls extension, the tojson filter
overridden (no HTML escaping; indent, separators and sort_keys exposed), and the globals raise_exception and
strftime_now. The variables are those render_jinja_template passes: messages, tools (None), documents (None),
add_generation_prompt, the tokenizer's special tokens map (bos_token, eos_token, ... as strings, only those set,
plus additional_special_tokens) and any extra keyword arguments (enable_thinking, ...).

Only jinja2 is needed (not transformers, torch or the network). Usage:

    python3 tools/chat/render_reference.py CASES_DIR

reads CASES_DIR/cases.json and writes CASES_DIR/expected.json: for each case either {"prompt": "..."} or
{"error": "the template's message"}.
"""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_TOKEN_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


class AssistantTracker(Extension):
    """transformers' {% generation %} ... {% endgeneration %} tag; without assistant masks it renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def compile_template(source):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def token_content(value):
    """A special token as tokenizer_config.json writes it: a string or an added-token object {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def load(template_dir):
    """The chat template and special tokens map of a directory holding tokenizer_config.json."""
    config = json.loads((template_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = config.get("chat_template")
    if isinstance(template, list):
        template = {t["name"]: t["template"] for t in template}.get("default")
    if template is None and (template_dir / "chat_template.jinja").is_file():
        template = (template_dir / "chat_template.jinja").read_text(encoding="utf-8")
    specials = {}
    for attr in SPECIAL_TOKEN_ATTRIBUTES:
        content = token_content(config.get(attr))
        if content:
            specials[attr] = content
    extra = [token_content(t) for t in config.get("additional_special_tokens") or []]
    if extra:
        specials["additional_special_tokens"] = extra
    return template, specials


def render(template_dir, messages, add_generation_prompt, kwargs):
    template, specials = load(template_dir)
    if template is None:
        return {"error": "no chat template"}
    kwargs = dict(kwargs)
    tools = kwargs.pop("tools", None)  # apply_chat_template's own arguments, passed as None when not given
    documents = kwargs.pop("documents", None)
    try:
        prompt = compile_template(template).render(messages=messages, tools=tools, documents=documents,
                                                   add_generation_prompt=add_generation_prompt,
                                                   **{**specials, **kwargs})
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}
    return {"prompt": prompt}


def main(cases_dir):
    cases_dir = Path(cases_dir)
    cases = json.loads((cases_dir / "cases.json").read_text(encoding="utf-8"))
    expected = {}
    for case in cases:
        messages = json.loads((cases_dir / "messages" / (case["messages"] + ".json")).read_text(encoding="utf-8"))
        expected[case["name"]] = render(cases_dir / "templates" / case["template"], messages,
                                        case.get("add_generation_prompt", False), case.get("kwargs", {}))
    text = json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    (cases_dir / "expected.json").write_text(text, encoding="utf-8")
    print(f"{len(expected)} cases written to {cases_dir / 'expected.json'} (jinja2 {jinja2.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render_reference.py CASES_DIR")
    main(sys.argv[1])
