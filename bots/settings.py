"""One typed settings object, read from the environment and an optional `.env` file.

Names follow ../shared/DESIGN.md. A missing or malformed value is reported by `SettingsError`
as one line naming the variable; secrets are `SecretStr` so they never reach a log or a repr.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bots.desk.routing import (
    DeskGroup,
    DeskRouting,
    RoutingError,
    parse_desks,
    parse_routes,
)
from handoff.hours import BusinessHours, HoursError, parse_named, parse_schedule

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NLU_DIR = PACKAGE_ROOT / "nlu" / "data"
DEFAULT_FLOWS_DIR = PACKAGE_ROOT / "flows" / "data"
APP_NAME = "supportbot"
MIN_SECRET = 16  # characters of a webhook secret or API token: 64+ bits when random hex
TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class SettingsError(Exception):
    """A setting is missing or malformed; `str()` is a single line fit for a terminal."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
        frozen=True,
    )

    # Telegram customer channel
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    # VK customer channel (a community token with the messages right)
    vk_token: SecretStr | None = None
    vk_group_id: int | None = Field(default=None, ge=1)
    vk_api_url: str = "https://api.vk.com"
    vk_mode: Literal["longpoll", "callback"] = "longpoll"
    vk_confirmation: str | None = None  # the Callback API server's confirmation string
    vk_secret: SecretStr | None = None  # the Callback API server's secret key
    vk_poll_wait: int = Field(default=25, ge=1, le=90)
    vk_requests_per_second: float = Field(default=20.0, gt=0)
    # A community administrator's user token: wall.deleteComment and groups.ban (docs/vk.md)
    vk_admin_token: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # The operator desk (a Telegram forum supergroup) and the human handoff
    operator_chat_id: int | None = None
    # Several desk groups ("sales=-100111, care=-100222"), each with its own budget, topics and
    # queue summary; conversations are routed by DESK_ROUTES (docs/desk.md, "Several desks").
    operator_chat_ids: str = ""
    desk_routes: str = ""  # "channel:vk -> care; language:en -> care; tag:refund -> sales"
    # Relay bots (comma-separated tokens), admins of the desk group: they post customers' texts
    # into topics with budgets of their own (docs/desk.md, "Relay bots").
    desk_relay_tokens: SecretStr | None = None
    # comma-separated Telegram user ids who may act at the desk; empty: every member of the desk
    # group may (docs/reports.md, "Access"); supervisors may always
    desk_operators: str = ""
    desk_supervisors: str = ""  # comma-separated Telegram user ids, mentioned on escalations
    desk_trainers: str = ""  # comma-separated Telegram user ids: /reload, /totemplate, /toflow
    flow_drafts_file: Path | None = None  # default: DATA_DIR/flow-drafts.yml
    desk_templates_file: Path | None = None  # default: DATA_DIR/templates.yml
    rules_file: Path | None = None  # automation rules; default DATA_DIR/rules.yml (optional)
    operator_capacity: int = Field(default=5, ge=1, le=50)
    auto_assign: bool = False
    business_hours: str = ""  # e.g. "mon-fri 09:00-21:00; sat 10:00-18:00"; empty: always open
    timezone: str = "Europe/Moscow"
    holidays: str = ""  # e.g. "2026-12-31,2027-01-01"
    # The web channel (docs/web.md): the chat widget on the brand's site.
    web_enabled: bool = True
    web_origins: str = ""  # sites that may embed the widget, "https://shop.example.com,..."
    web_identity_secret: SecretStr | None = None  # the brand's site signs customers with it
    web_public_url: str = ""  # how the desk reaches /widget/files (default: the request's)
    web_file_days: float = Field(default=30.0, gt=0)  # how long images are kept
    # A desk group's own hours, by desk name: "care = Asia/Vladivostok mon-fri 09:00-18:00;
    # except 2027-01-01 | sales = daily 08:00-22:00" (docs/desk.md, "Shifts and hours").
    desk_hours: str = ""
    # Operators' shifts, by Telegram user id: "111 = Asia/Vladivostok mon-fri 09:00-18:00 |
    # 222 = Europe/Moscow mon-fri 09:00-18:00"; changed at the desk with /shift.
    desk_shifts: str = ""
    sla_unclaimed_minutes: float = Field(default=5.0, ge=0)
    sla_reply_minutes: float = Field(default=10.0, ge=0)
    # The SLA ladder: the supervisors are called this long after the first reminder or
    # escalation, and everyone once more as long after that (0: the first level only).
    sla_ladder_minutes: float = Field(default=10.0, ge=0)
    offline_grace_minutes: float = Field(default=5.0, ge=0)
    api_token: SecretStr | None = None  # enables the HTTP API at /api/v1
    # Addresses of reverse proxies in front of the bot: for requests from them the client is
    # the last address in X-Forwarded-For that is not a proxy (per-client limits need it).
    trusted_proxies: str = ""

    # Redis
    redis_url: str | None = None
    # Redis Sentinel (instead of REDIS_URL): "host:port,host:port,..." and the master's name
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    redis_prefix: str = "sb:"
    ingest_shards: int = Field(default=8, ge=1, le=1024)
    stream_maxlen: int = Field(default=100_000, ge=1000)
    # Entries of a conversation's transcript kept at hand (the desk, the API, the flows' view);
    # older ones move to its archive, which an export reads in full (docs/reports.md).
    transcript_max: int = Field(default=200, ge=10, le=100_000)
    dedup_ttl_seconds: int = Field(default=48 * 3600, ge=60)
    # How long a dead worker's shards (or a dead poller's token) stay locked before another
    # process takes over: the failover time.
    lease_seconds: float = Field(default=10.0, ge=0.2, le=600)
    telegram_poll_timeout: int = Field(default=25, ge=0, le=50)

    # NLU and flows
    nlu_backend: Literal["embedded", "rasa"] = "embedded"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout: float = Field(default=1.0, gt=0, le=30)  # seconds; then the embedded model
    nlu_data_dir: Path = DEFAULT_NLU_DIR
    flows_dir: Path = DEFAULT_FLOWS_DIR
    nlu_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    misses_before_handoff: int = Field(default=2, ge=1, le=10)
    language: Literal["ru", "en"] = "ru"

    # Local storage
    data_dir: Path = Path(platformdirs.user_data_dir(APP_NAME))
    cache_dir: Path = Path(platformdirs.user_cache_dir(APP_NAME))

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value or "{" in value or "}" in value:
            raise ValueError("must be non-empty and contain no braces (braces are hash tags)")
        return value

    @field_validator("telegram_api_url", "rasa_url", "vk_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def templates_path(self) -> Path:
        return self.desk_templates_file or self.data_dir / "templates.yml"

    @property
    def rules_path(self) -> Path:
        return self.rules_file or self.data_dir / "rules.yml"

    @property
    def operator_ids(self) -> list[int]:
        return [int(part) for part in self.desk_operators.replace(" ", "").split(",") if part]

    @property
    def supervisor_ids(self) -> list[int]:
        return [int(part) for part in self.desk_supervisors.replace(" ", "").split(",") if part]

    @property
    def trainer_ids(self) -> list[int]:
        return [int(part) for part in self.desk_trainers.replace(" ", "").split(",") if part]

    @property
    def flow_drafts_path(self) -> Path:
        return self.flow_drafts_file or self.data_dir / "flow-drafts.yml"

    @property
    def web_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.web_origins.split(",") if o.strip()]

    @property
    def vk_enabled(self) -> bool:
        return self.vk_token is not None

    @model_validator(mode="after")
    def _vk(self) -> Settings:
        if self.vk_token is not None and self.vk_group_id is None:
            raise ValueError("VK_GROUP_ID: required with VK_TOKEN")
        if self.vk_token is not None and self.vk_mode == "callback" and (
                not self.vk_confirmation or self.vk_secret is None):
            raise ValueError("VK_MODE=callback needs VK_CONFIRMATION and VK_SECRET")
        return self

    @model_validator(mode="after")
    def _redis(self) -> Settings:
        from handoff.sentinel import parse_sentinels

        if self.redis_sentinels:
            if self.redis_url:
                raise ValueError("set REDIS_URL or REDIS_SENTINELS, not both")
            try:
                parse_sentinels(self.redis_sentinels)
            except ValueError as exc:
                raise ValueError(f"REDIS_SENTINELS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _hours(self) -> Settings:
        if self.business_hours or self.holidays:
            try:
                BusinessHours.parse(self.business_hours or "mon-sun 00:00-24:00", self.timezone,
                                    self.holidays)
            except (HoursError, ValueError) as exc:
                raise ValueError(f"BUSINESS_HOURS/TIMEZONE/HOLIDAYS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _shifts(self) -> Settings:
        """DESK_HOURS and DESK_SHIFTS are read at start: an error names the entry."""
        self.desk_hours_by_chat()
        self.shifts_by_operator()
        return self

    def desk_hours_by_chat(self) -> dict[str, BusinessHours]:
        """DESK_HOURS keyed by each desk group's chat id (as the conversation stores it)."""
        try:
            named = parse_named(self.desk_hours, "desk")
            found = {}
            for name, spec in named:
                desk = self.desk_routing().find(name) if self.desk_groups else None
                if desk is None:
                    raise HoursError(f"no desk named {name!r} (desks: "
                                     f"{', '.join(d.name for d in self.desk_groups) or 'none'})")
                found[str(desk.chat_id)] = parse_schedule(spec, self.timezone)
            return found
        except HoursError as exc:
            raise ValueError(f"DESK_HOURS: {exc}") from None

    def shifts_by_operator(self) -> dict[str, str]:
        """DESK_SHIFTS keyed by operator id ("tg:111"), each checked."""
        try:
            found = {}
            for who, spec in parse_named(self.desk_shifts, "shift"):
                digits = who.removeprefix("tg:")
                if not digits.isdigit():
                    raise HoursError(f"{who!r} is not a Telegram user id such as 123456789")
                parse_schedule(spec, self.timezone)
                found[f"tg:{digits}"] = spec
            return found
        except HoursError as exc:
            raise ValueError(f"DESK_SHIFTS: {exc}") from None

    @field_validator("telegram_webhook_secret", "vk_secret", "api_token")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """A secret set empty would switch authentication off; a short one can be guessed.
        Set at all, it must be at least MIN_SECRET characters (e.g. `openssl rand -hex 16`)."""
        if value is None:
            return None
        secret = value.get_secret_value()
        if len(secret) < MIN_SECRET:
            raise ValueError(f"must be at least {MIN_SECRET} characters (it is {len(secret)}); "
                             "generate one with: openssl rand -hex 16")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TELEGRAM_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("Telegram allows 1-256 characters A-Z a-z 0-9 _ - (setWebhook)")
        return value

    @model_validator(mode="after")
    def _webhook(self) -> Settings:
        if self.telegram_mode == "webhook" and self.telegram_bot_token is not None and (
                not self.telegram_webhook_url or self.telegram_webhook_secret is None):
            raise ValueError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL and "
                             "TELEGRAM_WEBHOOK_SECRET")
        return self

    @model_validator(mode="before")
    @classmethod
    def _first_desk(cls, data: Any) -> Any:
        """With OPERATOR_CHAT_IDS alone, OPERATOR_CHAT_ID stands for the first desk (the home of
        desk-wide notes; everything that asks "is there a desk?" reads it)."""
        if isinstance(data, dict) and data.get("operator_chat_ids") \
                and data.get("operator_chat_id") in (None, ""):
            try:
                desks = parse_desks(str(data["operator_chat_ids"]))
            except RoutingError:  # reported by _desks, with the setting's name
                return data
            if desks:
                data = {**data, "operator_chat_id": desks[0].chat_id}
        return data

    @model_validator(mode="after")
    def _desks(self) -> Settings:
        """OPERATOR_CHAT_IDS and DESK_ROUTES are read at start: an error names the desk or the
        rule (RoutingError is a ValueError)."""
        try:
            desks = parse_desks(self.operator_chat_ids)
        except RoutingError as exc:
            raise ValueError(f"OPERATOR_CHAT_IDS: {exc}") from None
        if desks and self.operator_chat_id not in [d.chat_id for d in desks]:
            raise ValueError("OPERATOR_CHAT_ID is not one of OPERATOR_CHAT_IDS: set one of them")
        try:
            parse_routes(self.desk_routes, self.desk_groups)
        except RoutingError as exc:
            raise ValueError(f"DESK_ROUTES: {exc}") from None
        return self

    @property
    def desk_groups(self) -> list[DeskGroup]:
        """Every desk group (one, named "desk", when only OPERATOR_CHAT_ID is set)."""
        desks = parse_desks(self.operator_chat_ids)
        if not desks and self.operator_chat_id is not None:
            return [DeskGroup("desk", self.operator_chat_id)]
        return desks

    def desk_routing(self) -> DeskRouting:
        desks = self.desk_groups
        return DeskRouting(desks, parse_routes(self.desk_routes, desks))

    @property
    def relay_tokens(self) -> list[str]:
        raw = self.desk_relay_tokens.get_secret_value() if self.desk_relay_tokens else ""
        return [part for part in raw.replace(" ", "").split(",") if part]

    @field_validator("desk_relay_tokens")
    @classmethod
    def _relay_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        for part in (value.get_secret_value() if value else "").replace(" ", "").split(","):
            bot_id, _, secret = part.partition(":")
            if part and (not bot_id.isdigit() or len(secret) < 8):
                raise ValueError("each token must look like 123456:ABC... (a bot token from "
                                 "@BotFather)")
        return value

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        return frozenset(part for part in self.trusted_proxies.replace(" ", "").split(",")
                         if part)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for part in value.replace(" ", "").split(","):
            if part:
                ipaddress.ip_address(part)  # ValueError: "... does not appear to be an IPv4..."
        return value

    @field_validator("desk_operators", "desk_supervisors", "desk_trainers")
    @classmethod
    def _ids(cls, value: str) -> str:
        for part in value.replace(" ", "").split(","):
            if part and not part.lstrip("-").isdigit():
                raise ValueError(f"{part!r} is not a Telegram user id")
        return value


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            if error["type"] == "extra_forbidden":
                lines.append(f"{name}: unknown setting (check the spelling in .env)")
            else:
                lines.append(f"{name}: {error['msg']}")
        raise SettingsError("; ".join(lines)) from None
