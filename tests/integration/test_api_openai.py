"""The official `openai` client, changed only in base_url and api_key, against a real Hearth server."""

from __future__ import annotations

import math

import openai
import pytest
from openai.types.chat import ChatCompletion

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def client(api_server, engine) -> openai.OpenAI:
    server = api_server(engine=engine)
    with openai.OpenAI(base_url=server.base_url, api_key=server.token, max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture
def embed_client(api_server) -> openai.OpenAI:
    """No chat model behind this one: embeddings never touch it."""
    server = api_server()
    with openai.OpenAI(base_url=server.base_url, api_key=server.token, max_retries=0, timeout=120) as c:
        yield c


def test_non_streamed_completion(client: openai.OpenAI, engine, plain_answer) -> None:  # type: ignore[no-untyped-def]
    engine.reset_cache()  # the prompt is evaluated from scratch, in the same batches as the reference
    reply = client.chat.completions.create(model="hearth", messages=QUESTION, temperature=0, max_tokens=48)
    choice = reply.choices[0]
    assert choice.message.content == plain_answer(QUESTION[0]["content"], 48, engine.n_ctx, engine.threads)
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == "hearth" and reply.id.startswith("chatcmpl-")


def test_streamed_completion_matches_the_non_streamed_one(client: openai.OpenAI) -> None:
    args = {"model": "smollm2-135m", "messages": QUESTION, "temperature": 0, "max_tokens": 48}
    whole = client.chat.completions.create(**args).choices[0].message.content
    stream = client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    text = "".join(pieces)
    assert text.strip() and text == whole  # greedy: the same tokens either way
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


def _count_to_100(client: openai.OpenAI, max_tokens: int) -> ChatCompletion:
    return client.chat.completions.create(
        model="hearth",
        messages=[{"role": "user", "content": "Count from one to one hundred in words."}],
        temperature=0,
        max_tokens=max_tokens,
    )


def test_max_tokens_is_respected_and_reported_as_length(client: openai.OpenAI) -> None:
    short = _count_to_100(client, 5)
    assert short.choices[0].finish_reason == "length"
    longer = _count_to_100(client, 10)
    assert longer.choices[0].message.content.startswith(short.choices[0].message.content)
    assert len(longer.choices[0].message.content) > len(short.choices[0].message.content)


def test_usage_counts_exactly_the_generated_tokens(client: openai.OpenAI) -> None:
    assert _count_to_100(client, 5).usage.completion_tokens == 5


def test_system_prompt_history_and_stop_sequences(client: openai.OpenAI, engine, reference_reply) -> None:  # type: ignore[no-untyped-def]
    from desktop.engine import Message, SamplingParams

    chat = [
        ("system", "You answer in one short sentence."),
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is the capital of France?"),
    ]
    prompt = engine.render([Message(role, text) for role, text in chat])  # type: ignore[arg-type]
    plain = reference_reply(prompt, SamplingParams(temperature=0, max_tokens=48), engine.n_ctx, engine.threads)
    words = plain.split()
    assert len(words) >= 3, plain
    stop = words[2]  # a word plain llama.cpp says: the API must stop right before it
    engine.reset_cache()
    reply = client.chat.completions.create(
        model="hearth",
        messages=[{"role": role, "content": text} for role, text in chat],  # type: ignore[misc]
        temperature=0,
        max_tokens=48,
        stop=[stop],
    )
    assert reply.choices[0].message.content == plain[: plain.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_api_errors_reach_the_client_as_openai_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=QUESTION)
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="hearth-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert "hearth" in [m.id for m in client.models.list()]


def test_embeddings(embed_client: openai.OpenAI) -> None:
    client = embed_client
    texts = ["The cat sat on the mat.", "A cat was sitting on a rug.", "Quarterly tax filing deadlines"]
    result = client.embeddings.create(model="all-minilm-l6-v2", input=texts)  # the client asks for base64
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)
    similar = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    unrelated = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert similar > unrelated + 0.2
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(
        model="all-minilm-l6-v2", input="The cat sat on the mat.", encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-5)
