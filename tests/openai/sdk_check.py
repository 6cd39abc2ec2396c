#!/usr/bin/env python3
"""The official OpenAI Python SDK against `verinfer gateway`.

Run by cli/tests/gateway_openai.rs with the virtual environment's python (the pin is in
requirements.txt next to this file), OPENAI_BASE_URL and OPENAI_API_KEY set to what
`verinfer devnet --keep-running` printed. By hand:

    python -m venv /tmp/oa && /tmp/oa/bin/pip install -r tests/openai/requirements.txt
    export OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 OPENAI_API_KEY=vk-...
    /tmp/oa/bin/python tests/openai/sdk_check.py > answers.json

It checks what the SDK itself can check (the models list, the response shapes, the `verinfer`
extra fields, PNG bytes, the SDK's exception classes for 401, 404 and 400) and prints one JSON
document on stdout with everything the Rust test checks against the chain: the texts, finish
reasons, usage, each response's `verinfer` object, the images as base64. Progress goes to
stderr. A failed check exits 1 with `sdk_check: FAILED: <why>` on stderr (and the answers so
far, for the failure message).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import openai
from openai import OpenAI

TEXT_MODEL = "tiny-llama"
IMAGE_MODEL = "tiny-sd"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Requests wait for validation by three nodes on CPUs: generous, and never retried (a retry
# would create another task).
TIMEOUT_S = float(os.environ.get("SDK_CHECK_TIMEOUT_S", "600"))

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a storyteller. Answer in one sentence."},
    {"role": "user", "content": "Once upon a time"},
]
IMAGE_PROMPT = "a red bicycle"

# What the script got so far: printed on stdout at the end, on stderr when a check fails.
answers: dict = {"sdk_version": openai.__version__}


class CheckFailed(Exception):
    pass


def check(condition: bool, why: str) -> None:
    if not condition:
        raise CheckFailed(why)


def log(message: str) -> None:
    print(f"sdk_check: {message}", file=sys.stderr, flush=True)


def extras(model) -> dict:
    """The fields the SDK's type does not declare (`model_extra`, else `to_dict()`)."""
    extra = getattr(model, "model_extra", None) or {}
    if not extra:
        declared = set(type(model).model_fields)
        extra = {k: v for k, v in model.to_dict().items() if k not in declared}
    return extra


def verinfer_of(model, what: str, required: bool = True) -> dict | None:
    """The response's `verinfer` object, with the fields every kind has checked."""
    found = extras(model).get("verinfer")
    if found is None:
        check(not required, f"{what}: no `verinfer` object in the response")
        return None
    check(isinstance(found, dict), f"{what}: `verinfer` is not an object: {found!r}")
    task_id = found.get("task_id")
    check(
        isinstance(task_id, int) and not isinstance(task_id, bool) and task_id >= 0,
        f"{what}: verinfer.task_id is not an integer: {task_id!r}",
    )
    tx = found.get("tx")
    check(
        isinstance(tx, str) and tx.startswith("0x") and len(tx) == 66,
        f"{what}: verinfer.tx is not a transaction hash: {tx!r}",
    )
    check(
        found.get("outcome") == "validated",
        f"{what}: verinfer.outcome is {found.get('outcome')!r}, not 'validated'",
    )
    nodes = found.get("nodes")
    check(
        isinstance(nodes, list) and len(nodes) > 0 and all(isinstance(n, str) for n in nodes),
        f"{what}: verinfer.nodes is not a non-empty list of addresses: {nodes!r}",
    )
    return found


def check_text_verinfer(found: dict, what: str) -> None:
    check(
        found.get("validation") == "full",
        f"{what}: verinfer.validation is {found.get('validation')!r}; {TEXT_MODEL} is fully validated",
    )
    check(isinstance(found.get("checked"), bool), f"{what}: verinfer.checked is not a bool")
    digest = found.get("digest")
    check(
        isinstance(digest, str) and digest.startswith("0x") and len(digest) == 66,
        f"{what}: verinfer.digest is not a 32-byte hex: {digest!r}",
    )


def check_image_verinfer(found: dict, count: int, what: str) -> None:
    phashes = found.get("phashes")
    check(
        isinstance(phashes, list) and len(phashes) == count,
        f"{what}: verinfer.phashes is not a list of {count}: {phashes!r}",
    )
    for phash in phashes:
        check(
            isinstance(phash, str)
            and len(phash) == 16
            and all(c in "0123456789abcdefABCDEF" for c in phash),
            f"{what}: verinfer.phashes holds {phash!r}, not 16 hex digits",
        )


def check_png(png: bytes, what: str) -> None:
    check(png.startswith(PNG_SIGNATURE), f"{what}: not a PNG (starts {png[:8]!r})")
    # IHDR: width and height, big-endian, at bytes 16..24.
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    check((width, height) == (64, 64), f"{what}: {width}x{height}, not the 64x64 asked for")


def models(client: OpenAI) -> None:
    listed = client.models.list()
    ids = [model.id for model in listed]
    answers["models"] = ids
    log(f"models: {ids}")
    for wanted in (TEXT_MODEL, IMAGE_MODEL):
        check(wanted in ids, f"models.list() has no {wanted!r}: {ids}")
    for model in listed:
        check(model.object == "model", f"models.list(): {model.id} has object {model.object!r}")


def chat(client: OpenAI) -> None:
    started = time.monotonic()
    completion = client.chat.completions.create(
        model=TEXT_MODEL,
        messages=CHAT_MESSAGES,
        max_tokens=12,
        temperature=0,
        seed=7,
    )
    log(f"chat completion in {time.monotonic() - started:.1f} s")
    what = "chat completion"
    check(completion.object == "chat.completion", f"{what}: object {completion.object!r}")
    check(completion.model == TEXT_MODEL, f"{what}: model {completion.model!r}")
    check(bool(completion.id), f"{what}: no id")
    check(isinstance(completion.created, int), f"{what}: created {completion.created!r}")
    check(len(completion.choices) == 1, f"{what}: {len(completion.choices)} choices, not 1")
    choice = completion.choices[0]
    check(choice.index == 0, f"{what}: choice index {choice.index}")
    check(choice.message.role == "assistant", f"{what}: role {choice.message.role!r}")
    text = choice.message.content
    check(isinstance(text, str), f"{what}: message.content is {text!r}")
    check(
        choice.finish_reason in ("stop", "length"),
        f"{what}: finish_reason {choice.finish_reason!r}",
    )
    usage = completion.usage
    check(usage is not None, f"{what}: no usage")
    check(
        0 < usage.completion_tokens <= 12,
        f"{what}: usage.completion_tokens {usage.completion_tokens} with max_tokens=12",
    )
    check(
        usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
        f"{what}: usage does not add up: {usage}",
    )
    found = verinfer_of(completion, what)
    check_text_verinfer(found, what)
    answers["chat"] = {
        "id": completion.id,
        "text": text,
        "finish_reason": choice.finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "verinfer": found,
    }
    log(f"chat: task {found['task_id']}: {text!r} ({choice.finish_reason})")


def chat_stream(client: OpenAI) -> None:
    started = time.monotonic()
    stream = client.chat.completions.create(
        model=TEXT_MODEL,
        messages=CHAT_MESSAGES,
        max_tokens=12,
        temperature=0,
        seed=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    what = "streamed chat completion"
    pieces: list[str] = []
    finish_reason = None
    found = None
    ids = set()
    chunks = 0
    usage = None
    roles = []
    for chunk in stream:
        chunks += 1
        check(
            chunk.object == "chat.completion.chunk",
            f"{what}: chunk {chunks} has object {chunk.object!r}",
        )
        check(chunk.model == TEXT_MODEL, f"{what}: chunk {chunks} has model {chunk.model!r}")
        ids.add(chunk.id)
        here = verinfer_of(chunk, f"{what}, chunk {chunks}", required=False)
        if here is not None:
            if found is None:
                found = here
            else:
                check(
                    here["task_id"] == found["task_id"],
                    f"{what}: chunks name tasks {found['task_id']} and {here['task_id']}",
                )
        if chunk.usage is not None:
            usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
                "total_tokens": chunk.usage.total_tokens,
            }
        for choice in chunk.choices:
            check(choice.index == 0, f"{what}: chunk {chunks} has choice {choice.index}")
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                if found is None:
                    # The text arrives after validation: the task is known by then.
                    raise CheckFailed(
                        f"{what}: chunk {chunks} carries text before any chunk carried `verinfer`"
                    )
                pieces.append(choice.delta.content)
            if choice.finish_reason is not None:
                check(finish_reason is None, f"{what}: two chunks carry a finish_reason")
                finish_reason = choice.finish_reason
    log(f"stream: {chunks} chunks in {time.monotonic() - started:.1f} s")
    check(chunks > 0, f"{what}: no chunks")
    check(len(ids) == 1, f"{what}: the chunks have ids {sorted(ids)}, not one")
    check(roles in ([], ["assistant"]), f"{what}: delta roles {roles}")
    check(found is not None, f"{what}: no chunk carries a `verinfer` object")
    check_text_verinfer(found, what)
    check(finish_reason in ("stop", "length"), f"{what}: finish_reason {finish_reason!r}")
    check(
        usage is not None,
        f"{what}: no chunk carries usage although stream_options.include_usage was set",
    )
    check(
        usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"],
        f"{what}: usage does not add up: {usage}",
    )
    text = "".join(pieces)
    answers["stream"] = {
        "text": text,
        "finish_reason": finish_reason,
        "chunks": chunks,
        "content_chunks": len(pieces),
        "usage": usage,
        "verinfer": found,
    }
    log(f"stream: task {found['task_id']}: {text!r} ({finish_reason})")


def images_b64(client: OpenAI) -> None:
    started = time.monotonic()
    response = client.images.generate(
        model=IMAGE_MODEL,
        prompt=IMAGE_PROMPT,
        n=2,
        size="64x64",
        response_format="b64_json",
        extra_body={"seed": 3, "steps": 4},
    )
    log(f"images (b64_json) in {time.monotonic() - started:.1f} s")
    what = "images.generate(b64_json)"
    check(isinstance(response.created, int), f"{what}: created {response.created!r}")
    data = response.data or []
    check(len(data) == 2, f"{what}: {len(data)} images, not 2")
    encoded = []
    for index, image in enumerate(data):
        check(bool(image.b64_json), f"{what}: image {index} has no b64_json")
        check(image.url is None, f"{what}: image {index} has a url besides b64_json")
        check_png(base64.b64decode(image.b64_json, validate=True), f"{what}: image {index}")
        encoded.append(image.b64_json)
    found = verinfer_of(response, what)
    check_image_verinfer(found, 2, what)
    answers["images"] = {"b64_json": encoded, "verinfer": found}
    log(f"images: task {found['task_id']}: pHashes {found['phashes']}")


def download(url: str, base_url: str, api_key: str) -> tuple[bytes, bool]:
    """The URL's bytes (relative URLs against the base URL); retried with the API key when the
    URL alone is refused. Returns the bytes and whether the key was needed."""
    absolute = urllib.parse.urljoin(base_url.rstrip("/") + "/", url)
    try:
        with urllib.request.urlopen(absolute, timeout=60) as reply:
            return reply.read(), False
    except urllib.error.HTTPError as error:
        if error.code not in (401, 403):
            raise CheckFailed(f"GET {absolute}: HTTP {error.code}: {error.read()[:300]!r}")
    request = urllib.request.Request(absolute, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.read(), True
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"GET {absolute} (with the key too): HTTP {error.code}")


def image_url(client: OpenAI, base_url: str, api_key: str) -> None:
    started = time.monotonic()
    response = client.images.generate(
        model=IMAGE_MODEL,
        prompt="a blue boat",
        n=1,
        size="64x64",
        response_format="url",
        extra_body={"seed": 5, "steps": 4},
    )
    log(f"image (url) in {time.monotonic() - started:.1f} s")
    what = "images.generate(url)"
    data = response.data or []
    check(len(data) == 1, f"{what}: {len(data)} images, not 1")
    url = data[0].url
    check(bool(url), f"{what}: no url")
    check(data[0].b64_json is None, f"{what}: b64_json besides the url")
    png, needed_key = download(url, base_url, api_key)
    check_png(png, f"{what}: {url}")
    found = verinfer_of(response, what)
    check_image_verinfer(found, 1, what)
    answers["image_url"] = {
        "url": url,
        "url_needed_key": needed_key,
        "png_b64": base64.b64encode(png).decode(),
        "verinfer": found,
    }
    log(f"image url: task {found['task_id']}: {url} (key needed: {needed_key})")


def expect_error(name: str, expected: type, status: int, call) -> None:
    try:
        got = call()
    except openai.APIStatusError as error:
        answers.setdefault("errors", {})[name] = {
            "exception": type(error).__name__,
            "status": error.status_code,
            "body": error.body,
        }
        check(
            isinstance(error, expected) and error.status_code == status,
            f"{name}: the SDK raised {type(error).__name__} (HTTP {error.status_code}: "
            f"{error.body!r}), not {expected.__name__} ({status})",
        )
        log(f"{name}: {type(error).__name__} {error.status_code}: {error.body}")
        return
    raise CheckFailed(f"{name}: no error, the gateway answered {got!r:.300}")


def errors(base_url: str, api_key: str) -> None:
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    wrong = OpenAI(base_url=base_url, api_key="vk-wrong-key", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": "hello"}]
    expect_error(
        "wrong_api_key",
        openai.AuthenticationError,
        401,
        lambda: wrong.chat.completions.create(model=TEXT_MODEL, messages=messages, max_tokens=4),
    )
    expect_error(
        "wrong_api_key_images",
        openai.AuthenticationError,
        401,
        lambda: wrong.images.generate(model=IMAGE_MODEL, prompt="x", n=1, size="64x64"),
    )
    expect_error(
        "unknown_model",
        openai.NotFoundError,
        404,
        lambda: client.chat.completions.create(
            model="no-such-model", messages=messages, max_tokens=4
        ),
    )
    expect_error(
        "unknown_image_model",
        openai.NotFoundError,
        404,
        lambda: client.images.generate(model="no-such-model", prompt="x", n=1, size="64x64"),
    )
    expect_error(
        "max_tokens_0",
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model=TEXT_MODEL, messages=messages, max_tokens=0),
    )
    expect_error(
        "size_65x64",
        openai.BadRequestError,
        400,
        lambda: client.images.generate(model=IMAGE_MODEL, prompt="x", n=1, size="65x64"),
    )


def main() -> int:
    base_url = os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not base_url or not api_key:
        print("sdk_check: set OPENAI_BASE_URL and OPENAI_API_KEY", file=sys.stderr)
        return 2
    log(f"openai {openai.__version__} against {base_url}")
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=TIMEOUT_S)
    try:
        # The cheap checks first: a gateway that refuses everything fails in seconds.
        models(client)
        errors(base_url, api_key)
        chat(client)
        chat_stream(client)
        images_b64(client)
        image_url(client, base_url, api_key)
    except CheckFailed as failure:
        print(f"sdk_check: FAILED: {failure}", file=sys.stderr)
        print(f"sdk_check: answers so far: {json.dumps(answers)[:4000]}", file=sys.stderr)
        return 1
    except openai.APIError as error:
        status = getattr(error, "status_code", None)
        body = getattr(error, "body", None)
        print(
            f"sdk_check: FAILED: the SDK raised {type(error).__name__}"
            f"{f' (HTTP {status})' if status else ''}: {error}; body: {body!r}",
            file=sys.stderr,
        )
        print(f"sdk_check: answers so far: {json.dumps(answers)[:4000]}", file=sys.stderr)
        return 1
    json.dump(answers, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
