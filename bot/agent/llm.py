"""The chat model for a turn: any OpenAI-compatible endpoint, or the offline command model.

One client type covers OpenAI, Azure OpenAI (its /openai/v1/ endpoint), DeepSeek, Qwen's
compatible mode, vLLM and Ollama: only base URL, key and model name differ (README lists them).
Timeouts and retries with exponential backoff (429, 5xx, connection errors) are the openai
client's own, configured here from settings.
"""
from __future__ import annotations

from datetime import date

from langchain_core.language_models import BaseChatModel

from bot.agent.offline.model import OfflineCommandModel
from domain.settings import Settings

LOCAL_KEY = "not-needed"  # vLLM and Ollama accept any key; the client insists on one


def chat_model(settings: Settings, *, today: date, locale: str) -> BaseChatModel:
    if not settings.llm_configured:
        return OfflineCommandModel(today=today, locale=locale)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.llm_model or "gpt-4o-mini",
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or LOCAL_KEY,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        stream_usage=True,
    )


def model_label(settings: Settings) -> str:
    return f"{settings.llm_model} @ {settings.llm_base_url}" if settings.llm_configured else "offline command model"
