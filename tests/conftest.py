"""Shared fixtures: every test gets its own HEARTH_HOME and never sees the user's real data dir."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """os.environ with `values` set for the block (session fixtures cannot take the `monkeypatch` fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def minilm_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedder's OpenVINO IR, converted once per session (public weights, no user data)."""
    with environment(HEARTH_HOME=str(tmp_path_factory.mktemp("minilm-cache-home"))):
        from storage.embeddings import model_path
        from storage.openvino_minilm import cached_ir

        return cached_ir(Path(model_path())).parent


UNIT_TESTS = Path(__file__).parent / "unit"


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A fresh HEARTH_HOME whose cache already holds the converted embedder (tests/e2e/guarantees convert anew).

    Pure unit tests skip the conversion (tens of seconds, once per session); a unit test that embeds asks for
    it with `pytest.mark.usefixtures("minilm_ir")`.
    """
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    monkeypatch.delenv("HEARTH_PASSPHRASE", raising=False)
    cache = home / "cache"
    cache.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    if not request.path.is_relative_to(UNIT_TESTS) or "minilm_ir" in request.fixturenames:
        minilm_ir: Path = request.getfixturevalue("minilm_ir")
        (cache / minilm_ir.name).symlink_to(minilm_ir, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    from desktop.engine.models import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def engine(bundled_model: Path):
    """The real bundled model, loaded once per test session (about 2 s)."""
    from desktop.engine import Engine

    eng = Engine.load(bundled_model, n_ctx=2048)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def reference_reply(bundled_model: Path):
    """Plain `llama_cpp.Llama` on the bundled model: reference_reply(prompt_tokens, params, n_ctx, threads) -> text.

    The differential oracle: Hearth's engine, CLI and API must produce exactly the tokens plain llama.cpp
    produces from the same rendered prompt and settings (greedy), on whatever CPU runs the suite, instead of
    a hard-coded answer that is a coin flip between numeric paths. One Llama per (n_ctx, threads), kept.
    """
    from llama_cpp import Llama

    from desktop.engine import SamplingParams

    loaded: dict[tuple[int, int], Llama] = {}

    def reply(tokens: list[int], params: SamplingParams, n_ctx: int, threads: int) -> str:
        key = (n_ctx, threads)
        if key not in loaded:
            loaded[key] = Llama(
                model_path=str(bundled_model), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
            )
        llama = loaded[key]
        llama.reset()
        out = llama.create_completion(
            prompt=tokens,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repeat_penalty=params.repeat_penalty,
            stop=["<|im_end|>", *params.stop],
        )
        return out["choices"][0]["text"]

    yield reply
    for llama in loaded.values():
        llama.close()


@pytest.fixture
def plain_answer(engine, reference_reply):  # type: ignore[no-untyped-def]
    """plain_answer(question, max_tokens, n_ctx=None, threads=None): plain llama.cpp's greedy reply to one
    question framed as Hearth frames it by default (the model's measured system message), with Hearth's
    default sampling settings. What `hearth ask --temperature 0`, the API and the window must print."""
    from desktop.engine import DEFAULT_N_CTX, SamplingParams, physical_cores
    from desktop.engine.prompt_probe import messages_for

    def answer(question: str, max_tokens: int, n_ctx: int = DEFAULT_N_CTX, threads: int | None = None) -> str:
        tokens = engine.render(messages_for(engine.default_system_prompt, question))
        params = SamplingParams(temperature=0, max_tokens=max_tokens)
        return reference_reply(tokens, params, n_ctx, threads or physical_cores())

    return answer


# --- encrypted store (storage/store.py) ---------------------------------------------------------------

STORE_PASSPHRASE = "test passphrase: correct horse battery staple"


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keyed, migrated, empty store built once per session (Argon2id and migrations are paid once)."""
    import shutil

    template = tmp_path_factory.mktemp("store-template") / "home"
    with environment(HEARTH_HOME=str(template), HEARTH_KEYRING="0", HEARTH_PASSPHRASE=STORE_PASSPHRASE):
        from storage.store import Store

        Store.open().close()
    shutil.rmtree(template / "run", ignore_errors=True)
    return template


@pytest.fixture
def store(store_template: Path, hearth_home: Path, monkeypatch: pytest.MonkeyPatch):
    """An open Store with passphrase custody in this test's HEARTH_HOME; HEARTH_PASSPHRASE is set for the test."""
    import shutil

    shutil.copytree(store_template, hearth_home, dirs_exist_ok=True)
    monkeypatch.setenv("HEARTH_KEYRING", "0")
    monkeypatch.setenv("HEARTH_PASSPHRASE", STORE_PASSPHRASE)
    from storage.store import Store

    opened = Store.open()
    yield opened
    opened.close()


# --- local API (desktop/api) ----------------------------------------------------------------------------


@pytest.fixture
def api_server(store):
    """Start `ApiServer`s on free loopback ports: `api_server(engine=..., **ApiConfig fields)`; stopped after.

    Each server reads its clients from the test's encrypted store; `server.token` is the default client's
    token, made for the test. Without `engine`, a request that reaches the model gets a 503 (tests of the
    security layer never need it).
    """
    from desktop.api.app import ApiConfig, Backend
    from desktop.api.gate import ClientGate
    from desktop.api.server import ApiServer
    from storage.clients import Clients
    from storage.errors import KnownError

    servers = []
    token = Clients(store.settings).default_token(rotate=True)

    def no_engine():
        raise KnownError("no engine in this test")

    def start(engine=None, engine_getter=None, **config):
        getter = engine_getter or ((lambda: engine) if engine is not None else no_engine)
        backend = Backend(engine=getter, store=lambda: store)
        server = ApiServer(backend, ClientGate(store.connect_again), ApiConfig(**config), port=0)
        server.start()
        server.token = token  # what a user would have copied from `hearth api-token`
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- personalization (personalize/) ---------------------------------------------------------------------


def _ledger_entry(rng, day: int) -> str:  # type: ignore[no-untyped-def]
    names = ["Quillimor", "Bratchet", "Old Fenwhistle", "Marrowvane", "Tibbersall", "the Glimwarden"]
    things = ["brindlewhorls", "copper thimblecogs", "moonsalt", "fernglass lanterns", "sprocketmoss", "snailbread"]
    verbs = ["polished", "bartered away", "counted twice", "buried under the quay", "sang to", "weighed"]
    places = ["at the Wobbling Quay", "beneath Gullhook Tower", "in the Drizzleworks", "by the Ninefold Ditch"]
    closers = ["So it was logged, and so it stands.", "The tide keeps its own ledger.", "Mark it, mark it well."]
    lines = [f"Ledger of the Drizzleworks, day {day}."]
    for _ in range(rng.randint(3, 5)):
        who, what, did, where = (rng.choice(x) for x in (names, things, verbs, places))
        lines.append(f"{who} {did} {rng.randint(2, 19)} {what} {where}.")
    lines.append(rng.choice(closers))
    return " ".join(lines)


@pytest.fixture(scope="session")
def ledger_documents() -> list[tuple[str, str]]:
    """A deterministic corpus with a made-up style and vocabulary: a few dozen LoRA steps measurably help."""
    import random

    rng = random.Random(5)
    return [(f"ledger-{d}", "\n\n".join(_ledger_entry(rng, d * 10 + e) for e in range(6))) for d in range(12)]


@pytest.fixture(scope="session")
def converted_base_dir(tmp_path_factory: pytest.TempPathFactory, bundled_model: Path) -> Path:
    """The bundled GGUF converted to torch once per session (public weights, no user data)."""
    with environment(HEARTH_HOME=str(tmp_path_factory.mktemp("base-cache-home"))):
        from personalize import base

        info = base.inspect(bundled_model)
        base.load(info)
        return base.cache_dir(info)


@pytest.fixture
def base_cache(converted_base_dir: Path, hearth_home: Path) -> Path:
    """This test's HEARTH_HOME cache pointing at the session's converted base (no second conversion)."""
    from storage import paths

    link = paths.cache() / converted_base_dir.name
    if not link.exists():
        link.symlink_to(converted_base_dir, target_is_directory=True)
    return link


@pytest.fixture(scope="session")
def general_answers(converted_base_dir: Path, bundled_model: Path):  # type: ignore[no-untyped-def]
    """The bundled base's own answers to the shipped general prompts (personalize/drift.py), generated once."""
    with environment(HEARTH_HOME=str(converted_base_dir.parents[1])):
        from transformers import AutoTokenizer

        from personalize import base, drift, pipeline

        info = base.inspect(bundled_model)
        llama = pipeline.open_llama(info.path, pipeline.EVAL_CTX, threads=1)  # robust on a busy CI machine
        tokenizer = AutoTokenizer.from_pretrained(str(converted_base_dir))
        return info.sha256, drift.general_set(None, llama, tokenizer, info.sha256)


@pytest.fixture
def general_cached(store, general_answers) -> None:  # type: ignore[no-untyped-def]
    """This test's store already holds the general answers, as after a first run (saves ~40 s per test)."""
    from personalize import drift

    drift.remember(store, *general_answers)
