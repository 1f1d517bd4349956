#!/usr/bin/env python3
"""Dump chat-template golden renders for skiff-tokenizer's template tests.

Ground truth is `transformers`' own `apply_chat_template(..., tokenize=False)` (jinja2
sandbox, `trim_blocks`/`lstrip_blocks`, loop controls, its `tojson`, `raise_exception`
and `strftime_now`), called on a minimal tokenizer that carries just the template and the
bos/eos texts — the same variables skiff's `ChatTemplate::render` provides.

    /root/sk/venv-tok/bin/python tools/reference/dump_template_goldens.py \
        --models /root/sk/models --out testdata/tokenizer

(venv: `python3 -m venv /root/sk/venv-tok && /root/sk/venv-tok/bin/pip install
transformers tokenizers jinja2 gguf sentencepiece protobuf numpy`; no torch needed.)

Templates (`testdata/tokenizer/templates/*.jinja`):
  - smollm2.jinja: extracted here from SmolLM2-135M-Instruct.Q4_1.gguf
    (`tokenizer.chat_template`) when `--models` holds it; otherwise the committed copy is used;
  - gemma3.jinja: google/gemma-3-*-it `tokenizer_config.json` `chat_template` (the Gemma 3
    270M GGUF used by the tests is the base model and ships no template);
  - qwen2_5.jinja: Qwen/Qwen2.5-*-Instruct `tokenizer_config.json` `chat_template` (checked
    byte-identical to `tokenizer.chat_template` of qwen2.5-coder-0.5b-instruct-q4_k_m.gguf);
  - llama3.jinja: meta-llama/Meta-Llama-3-8B-Instruct's template (as llama-cpp-python ships it);
  - llama3_2.jinja: meta-llama/Llama-3.2-3B-Instruct's (llama.cpp `models/templates/`);
  - features.jinja: ours, not a model's: namespaces, loop controls and loop attributes,
    Python string/dict methods, slicing, filters, `tojson` keyword arguments, `dict()`,
    arithmetic and `{% generation %}`, i.e. what real templates use beyond the five above.

Writes `templates.golden.json`: for each template x conversation x add_generation_prompt,
either `"text"` (the exact render) or `"error"` (the `raise_exception` message, with
`"error_type": "TemplateError"`; other failures carry their Python exception type).
`strftime_now` is pinned to FIXED_TIME (UTC) so Llama 3.2's date line is reproducible.
"""
import argparse
import copy
import datetime as dt
import json
import os

import jinja2
import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
from transformers.utils import chat_template_utils

# 2025-03-09 17:45:00 UTC, pinned for `strftime_now`.
FIXED_TIME = 1741542300

TEMPLATES = {
    "smollm2": {"file": "smollm2.jinja", "bos": "<|im_start|>", "eos": "<|im_end|>"},
    "gemma3": {"file": "gemma3.jinja", "bos": "<bos>", "eos": "<eos>"},
    "qwen2_5": {"file": "qwen2_5.jinja", "bos": "", "eos": "<|im_end|>"},
    "llama3": {"file": "llama3.jinja", "bos": "<|begin_of_text|>", "eos": "<|eot_id|>"},
    "llama3_2": {"file": "llama3_2.jinja", "bos": "<|begin_of_text|>", "eos": "<|eot_id|>"},
    "features": {"file": "features.jinja", "bos": "<s>", "eos": "</s>"},
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city — returns °C & a <short> summary",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\" or 東京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "threshold": {"type": "number", "default": 0.5},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": []},
    },
}


def call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# Conversations: (name, messages, tools). Messages use only the fields skiff's `Message` has,
# in the order it presents them to templates: role, content, name, tool_calls, tool_call_id.
CONVERSATIONS = [
    ("single_user", [{"role": "user", "content": "Hello!"}], None),
    (
        "system_multi_turn",
        [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
        None,
    ),
    (
        "no_system_multi_turn",
        [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another?"},
        ],
        None,
    ),
    (
        "whitespace_unicode_and_specials",
        [
            {"role": "system", "content": "  Padded system prompt.\n\n"},
            {"role": "user", "content": "\n  你好 👨\u200d👩\u200d👧 café {{ not_a_tag }} {% raw %} <|im_start|><end_of_turn>  \t\n"},
            {"role": "assistant", "content": "  Bonjour !  \n"},
            {"role": "user", "content": "Quote: \"x\" & 'y' <b>bold</b>\\n"},
        ],
        None,
    ),
    (
        "tool_call_round_trip",
        [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [call("call_1", "get_weather", {"city": "Paris", "unit": "celsius", "days": 2})],
            },
            {"role": "tool", "content": "{\"temp_c\": 18.5, \"sky\": \"clear\"}", "name": "get_weather", "tool_call_id": "call_1"},
        ],
        [WEATHER_TOOL, TIME_TOOL],
    ),
    (
        "parallel_tool_calls",
        [
            {"role": "user", "content": "Weather in Oslo and the time in Tokyo?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    call("call_a", "get_weather", {"city": "Oslo"}),
                    call("call_b", "get_time", "{\"tz\": \"Asia/Tokyo\"}"),
                ],
            },
            {"role": "tool", "content": "-3 °C, snow", "name": "get_weather", "tool_call_id": "call_a"},
            {"role": "tool", "content": "09:12", "name": "get_time", "tool_call_id": "call_b"},
            {"role": "assistant", "content": "Oslo: -3 °C and snowing. Tokyo: 09:12."},
            {"role": "user", "content": "Thanks!"},
        ],
        [WEATHER_TOOL, TIME_TOOL],
    ),
    (
        "tool_turn_without_tools",
        [
            {"role": "user", "content": "Run it."},
            {"role": "assistant", "content": "Running."},
            {"role": "tool", "content": "exit code 0"},
        ],
        None,
    ),
    (
        "roles_not_alternating",
        [
            {"role": "user", "content": "first"},
            {"role": "user", "content": "second"},
        ],
        None,
    ),
]


class FixedDatetime(dt.datetime):
    """`datetime` whose `now()` is FIXED_TIME in UTC (transformers' strftime_now calls `datetime.now()`)."""

    @classmethod
    def now(cls, tz=None):
        return dt.datetime.fromtimestamp(FIXED_TIME, tz=dt.timezone.utc).replace(tzinfo=None)


def extract_smollm2(models_dir, templates_dir):
    path = os.path.join(models_dir, "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.isfile(path):
        print(f"{path} not found; using the committed smollm2.jinja")
        return
    from gguf import GGUFReader

    source = GGUFReader(path).fields["tokenizer.chat_template"].contents()
    with open(os.path.join(templates_dir, "smollm2.jinja"), "w", encoding="utf-8", newline="") as f:
        f.write(source)
    print(f"extracted smollm2.jinja ({len(source)} chars) from {path}")


def render(tokenizer, messages, tools, add_generation_prompt):
    try:
        text = tokenizer.apply_chat_template(
            copy.deepcopy(messages), tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False
        )
        return {"text": text}
    except jinja2.exceptions.TemplateError as e:
        return {"error_type": type(e).__name__, "error": str(e)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.environ.get("SKIFF_TEST_MODEL_DIR", "/root/sk/models"))
    ap.add_argument("--out", default="testdata/tokenizer")
    args = ap.parse_args()
    templates_dir = os.path.join(args.out, "templates")
    extract_smollm2(args.models, templates_dir)
    chat_template_utils.datetime = FixedDatetime

    templates = {}
    cases = []
    for name, t in TEMPLATES.items():
        with open(os.path.join(templates_dir, t["file"]), encoding="utf-8", newline="") as f:
            source = f.read()
        templates[name] = {"file": f"templates/{t['file']}", "bos": t["bos"], "eos": t["eos"]}
        # A model without a bos text (Qwen) has no `bos_token` at all; skiff passes "" there.
        specials = {k: v for k, v in (("bos_token", t["bos"]), ("eos_token", t["eos"])) if v}
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **specials)
        tok.chat_template = source
        for conv, messages, tools in CONVERSATIONS:
            for agp in (False, True):
                result = render(tok, messages, tools, agp)
                cases.append({"template": name, "conversation": conv, "add_generation_prompt": agp, **result})

    doc = {
        "generator": "tools/reference/dump_template_goldens.py",
        "reference": f"transformers {transformers.__version__} apply_chat_template(tokenize=False), jinja2 {jinja2.__version__}",
        "fixed_time": FIXED_TIME,
        "templates": templates,
        "conversations": [{"name": n, "messages": m, "tools": t} for n, m, t in CONVERSATIONS],
        "cases": cases,
    }
    out = os.path.join(args.out, "templates.golden.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum("error" in c for c in cases)
    print(f"{out}: {len(cases)} cases ({n_err} expected errors)")


if __name__ == "__main__":
    main()
