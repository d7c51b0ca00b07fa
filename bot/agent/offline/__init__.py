"""The offline command model: a deterministic chat model for the documented command language."""
