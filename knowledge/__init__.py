"""Playbooks for the iron triangle: documents, embeddings, a Chroma index and hybrid retrieval."""
