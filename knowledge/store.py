"""The Chroma collection holding playbook sections (local folder, or a Chroma server)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLLECTION = "ltc_playbooks"


def open_collection(settings, *, embedder_name: str):
    """A Chroma collection with telemetry off; vectors always come from our own embedder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlparse

        url = urlparse(settings.chroma_url)
        client = chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https",
                                     settings=chroma_settings)
    else:
        Path(settings.chroma_path).mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=settings.chroma_path, settings=chroma_settings)
    # One collection per embedder: vectors of different models must never be mixed.
    name = f"{COLLECTION}_{embedder_name.replace(':', '_').replace('/', '_')}"[:60]
    # No embedding_function: we pass vectors explicitly, so Chroma never loads (or downloads) its own.
    return client.get_or_create_collection(name, embedding_function=None, metadata={"hnsw:space": "cosine"})


def as_lists(vectors: np.ndarray) -> list[list[float]]:
    return [row.tolist() for row in np.asarray(vectors, dtype=np.float32)]
