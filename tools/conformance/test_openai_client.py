"""Conformance of a running `skiff serve` with the official `openai` Python client.

Run against a server on loopback (tools/conformance/run.sh starts one):

    SKIFF_BASE_URL=http://127.0.0.1:8080/v1 SKIFF_MODEL=smollm2 \
        /root/sk/venv-openai/bin/python tools/conformance/test_openai_client.py

Plain asserts; each `test_*` function is also a pytest test. Checks: models list, chat and
completions (whole and streamed, the same text), stream usage chunk, n=2, stop, seed
reproducibility, logprobs in both layouts, and each error class with its status, type,
param and code as the client exposes them.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import openai
from openai import OpenAI

BASE_URL = os.environ.get("SKIFF_BASE_URL", "http://127.0.0.1:8080/v1")
MODEL = os.environ.get("SKIFF_MODEL", "smollm2")
API_KEY = os.environ.get("SKIFF_API_KEY", "sk-no-key")

client = OpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0, timeout=120)

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "Name three colors."},
]


def greedy(**kw):
    args = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16, "temperature": 0}
    args.update(kw)
    return args


def test_models_list():
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert MODEL in ids, ids
    assert models.data[0].object == "model"
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_whole_and_streamed():
    whole = client.chat.completions.create(**greedy())
    assert whole.object == "chat.completion"
    choice = whole.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    u = whole.usage
    assert u.prompt_tokens > 0 and 0 < u.completion_tokens <= 16
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens

    chunks = list(client.chat.completions.create(**greedy(stream=True)))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert all(c.usage is None for c in chunks)
    reasons = [c.choices[0].finish_reason for c in chunks]
    assert all(r is None for r in reasons[:-1]) and reasons[-1] == choice.finish_reason, reasons
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == choice.message.content, (text, choice.message.content)


def test_stream_include_usage():
    chunks = list(
        client.chat.completions.create(
            **greedy(stream=True, stream_options={"include_usage": True})
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens > 0
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks[:-1])


def test_completions_whole_and_streamed():
    args = {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}
    whole = client.completions.create(**args)
    assert whole.object == "text_completion"
    assert whole.choices[0].finish_reason in ("stop", "length")
    chunks = list(client.completions.create(stream=True, **args))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text


def test_two_choices():
    r = client.chat.completions.create(**greedy(n=2, temperature=0.9, seed=7))
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content is not None for c in r.choices)


def test_stop():
    full = client.chat.completions.create(**greedy(max_tokens=24)).choices[0].message.content
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    r = client.chat.completions.create(**greedy(max_tokens=24, stop=[stop]))
    text = r.choices[0].message.content
    assert stop not in text, (stop, text)
    assert full.startswith(text), (full, text)
    assert r.choices[0].finish_reason == "stop"


def test_seed_reproducible():
    args = greedy(temperature=1.0, seed=1234, max_tokens=20)
    a = client.chat.completions.create(**args).choices[0].message.content
    b = client.chat.completions.create(**args).choices[0].message.content
    assert a == b, (a, b)


def test_logprobs():
    r = client.chat.completions.create(**greedy(logprobs=True, top_logprobs=3, max_tokens=6))
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens or len(content) == r.usage.completion_tokens - 1
    for entry in content:
        assert entry.logprob <= 0.0
        assert len(entry.top_logprobs) == 3
        assert bytes(entry.bytes).decode("utf-8", "replace") == entry.token
    c = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset)
    assert all(len(t) <= 2 for t in lp.top_logprobs)


def expect_error(cls, status, param=None, code=None, **kw):
    try:
        client.chat.completions.create(**kw)
    except cls as e:
        assert e.status_code == status, e
        body = e.body
        assert set(body) >= {"message", "type", "param", "code"}, body
        if param is not None:
            assert e.param == param, (e.param, body)
        if code is not None:
            assert e.code == code, (e.code, body)
        return
    raise AssertionError(f"expected {cls.__name__} for {kw}")


def test_error_classes():
    expect_error(openai.BadRequestError, 400, param="n", **greedy(n=17))
    expect_error(openai.BadRequestError, 400, param="top_logprobs", **greedy(logprobs=True, top_logprobs=21))
    expect_error(openai.BadRequestError, 400, param="temperature", **greedy(temperature=5))
    expect_error(openai.BadRequestError, 400, param="messages", model=MODEL, messages=[])
    expect_error(
        openai.BadRequestError, 400, param="messages", code="context_length_exceeded",
        **greedy(max_tokens=1_000_000),
    )
    expect_error(openai.NotFoundError, 404, param="model", code="model_not_found", **greedy(model="no-such-model"))


def raw_post(body: bytes):
    req = urllib.request.Request(
        BASE_URL + "/chat/completions", data=body, method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_body_errors():
    for body, status in [
        (b'{"model": ', 400),
        (b'{"model": "\xff"}', 400),
        (b" " * (33 << 20), 413),
    ]:
        got, resp = raw_post(body)
        assert got == status, (got, resp)
        assert set(resp["error"]) == {"message", "type", "param", "code"}, resp


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"ok   {name}")
        except Exception as e:  # report every failure, then fail the run
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed}/{len(tests)} conformance tests passed (openai {openai.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
