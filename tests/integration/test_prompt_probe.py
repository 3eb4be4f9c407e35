"""The probe's sampling arithmetic against llama.cpp's own sampler, on the real bundled model.

bench/probe.py picks each model's default temperature from `sampled_probability`: the chance that sampling
(repeat penalty, top-k, top-p, min-p, temperature, as llama-cpp-python chains them) says exactly the expected
reply. Here that chance is checked by drawing the reply from llama.cpp many times with different seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from desktop.engine import Engine
from desktop.engine.prompt_probe import PROBES, messages_for, sampled_probability

DRAWS = 80


@pytest.fixture(scope="module")
def scored(bundled_model: Path):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    llama = Llama(model_path=str(bundled_model), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    engine = Engine(llama, bundled_model, 512, 2)
    yield engine
    engine.close()


def test_the_chance_of_an_exact_reply_is_what_llama_cpp_draws(scored: Engine) -> None:
    question, expected = PROBES[1]  # Italy: likely but not certain, and very different at the two temperatures
    llama = scored.llama
    prompt = scored.render(messages_for("", question))
    reply = llama.tokenize(expected.encode(), add_bos=False, special=False)
    llama.reset()
    llama.eval(prompt + reply)
    logits = np.array(llama.scores[len(prompt) - 1 : len(prompt) - 1 + len(reply)], dtype=np.float64)
    computed = {t: sampled_probability(reply, logits, t) for t in (0.5, 1.5)}
    tolerance = {t: 4 * math.sqrt(p * (1 - p) / DRAWS) + 0.02 for t, p in computed.items()}
    assert abs(computed[0.5] - computed[1.5]) > max(tolerance.values()), "the draws would not tell them apart"
    for temperature, p in computed.items():
        hits = 0
        for seed in range(DRAWS):
            llama.set_seed(seed)
            drawn: list[int] = []
            for token in llama.generate(prompt, top_k=40, top_p=0.9, min_p=0.05, temp=temperature, repeat_penalty=1.1):
                drawn.append(token)
                if len(drawn) == len(reply) or token != reply[len(drawn) - 1]:
                    break
            hits += drawn == reply
        assert abs(hits / DRAWS - p) <= tolerance[temperature], f"T={temperature}: {p:.3f} vs {hits}/{DRAWS} drawn"
