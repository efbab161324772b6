"""The one settings object: read once from the environment (CONTACTQ_*) and an optional TOML file (`get_settings()`).

`CONTACTQ_CONFIG` may name a TOML file holding the same keys; the environment wins over the file.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class RateLimit(BaseModel):
    """At most `count` operations per account within any `period_s` window."""

    count: int = Field(gt=0)
    period_s: float = Field(gt=0)


class GeweAccount(BaseModel):
    """A WeChat account logged in on a Gewechat-compatible server: the server's device id (`appId`) for it, and which
    uin, wxid, protocol server, child and platform account (`loginer`) it is to contactq."""

    app_id: str = Field(min_length=1)
    uin: str = Field(min_length=1)
    wxid: str = Field(min_length=1)
    server_id: int
    child_id: int
    loginer: int = 0


def _default_rate_limits() -> dict[str, RateLimit]:
    # Every operation that calls WeChat. Friend requests are what gets an account banned; searches are cheaper but
    # still watched by WeChat; reading details, syncing and remarks are light, but not free either.
    return {
        "getContact": RateLimit(count=120, period_s=60),
        "syncContact": RateLimit(count=10, period_s=600),
        "modifyName": RateLimit(count=30, period_s=600),
        "searchContact": RateLimit(count=30, period_s=60),
        "addContact": RateLimit(count=10, period_s=600),
        "addChatRoomContact": RateLimit(count=10, period_s=600),
        "addNew": RateLimit(count=30, period_s=600),
    }


def _default_topics() -> dict[str, str]:
    return {
        "getcontact": "topic.getcontact",
        "modcontact": "topic.modcontact",
        "delcontact": "topic.delcontact",
        "chatroommember": "topic.chatroommember",
        "modchatroommember": "topic.modchatroommember",
        # The name the seed's modifyName and addChatRoomContact sections use for topic.modcontact.
        "modifycontact": "topic.modifycontact",
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTACTQ_", extra="ignore")

    # Which protocol server and which of its child processes this worker acts for.
    server_id: int = 1
    child_ids: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1])

    # Celery's broker and result backend, and the contact store the Java side reads.
    broker_url: str = "redis://127.0.0.1:6379/1"
    result_backend: str = "redis://127.0.0.1:6379/2"
    store_url: str = "redis://127.0.0.1:6379/0"

    # Redis broker: a message taken by a worker that dies comes back after visibility_timeout_s; no task may run
    # that long, or it is delivered twice.
    visibility_timeout_s: int = 300
    unacked_restore_interval_s: int = 5
    # A worker killed during a restore sweep holds the sweep's lock until it expires (kombu's default: 300 s).
    unacked_mutex_expire_s: int = 30
    # The workers' task events always on. Off, `contactq flower` and Flower turn them on while Flower runs (at its
    # start, then every 5 s): they cost the worker's main process a publish for every task it receives and finishes.
    task_events: bool = False
    task_time_limit_s: int = 240
    task_soft_time_limit_s: int = 200
    # Celery's autoscaler: each worker runs between min and max pool processes, growing with the tasks it holds.
    worker_autoscale_max: int = Field(default=4, ge=1)
    worker_autoscale_min: int = Field(default=1, ge=0)

    # Transient WeChat errors: retried with exponential backoff and jitter, then answered and dead-lettered.
    max_retries: int = 5
    retry_backoff_s: int = 1
    retry_backoff_max_s: int = 30

    rate_limits: dict[str, RateLimit] = Field(default_factory=_default_rate_limits)
    # A friend request seen again within this window (a redelivery, a double click) is answered, not sent again.
    dedupe_window_s: int = 3600

    sync_detail_batch: int = 100

    # The WeChat side: an entry point of the `contactq.protocol` group, and what the simulated one needs.
    protocol: str = "simulated"
    wechat_timeout_s: float = 10.0
    # The simulated WeChat's fixture file; none: the default one shipped with protocol/.
    fixture: Path | None = None
    sim_url: str = "redis://127.0.0.1:6379/0"
    sim_prefix: str = "simwx:"
    sim_page_size: int = 500
    push_block_ms: int = 1000

    # The Gewechat backend (`protocol = "gewe"`): the API base of this worker's server, its token (or a file holding
    # it), and the accounts of every server, each with its appId.
    gewe_base_url: str = "http://127.0.0.1:2531/v2/api"
    gewe_token: SecretStr = SecretStr("")
    gewe_token_file: Path | None = None
    gewe_accounts: list[GeweAccount] = Field(default_factory=list)
    gewe_max_connections: int = 20
    # The endpoint a Gewechat server posts its callbacks to: `http://{address}:{port}/callbacks/{secret}`.
    callbacks_address: str = "127.0.0.1"
    callbacks_port: int = 9809
    callbacks_secret: SecretStr = SecretStr("")
    callbacks_max_body_bytes: int = 256 * 1024

    # Where events and dead letters go inside the Celery broker, and replies inside the store (a Redis stream).
    events_exchange: str = "contactq.events"
    events_outbox: str = "contactq.outbox.events"
    replies_outbox: str = "contactq.outbox.replies"
    deadletter_queue: str = "contactq.deadletter"
    topics: dict[str, str] = Field(default_factory=_default_topics)
    emit_modchatroommember: bool = False
    # How long a chatroom member's acceptance of addChatRoomContact's request is awaited, to announce it as that
    # operation does (topic.modifycontact too); a later acceptance is announced on topic.modcontact only.
    awaiting_acceptance_s: int = 14 * 24 * 3600
    # modifyName and addChatRoomContact announce on topic.modcontact and on its alias topic.modifycontact.
    announce_modifycontact: bool = True

    # The deployment's protocol servers and their children (server id -> child ids): the bridge carries their
    # requests and the metrics watch their queues.
    servers: dict[int, list[int]] = Field(default_factory=lambda: {1: [1, 2]})

    # The ActiveMQ bridge: STOMP to the broker.
    activemq_host: str = "127.0.0.1"
    activemq_stomp_port: int = 61613
    activemq_user: str = ""
    activemq_password: str = ""
    bridge_prefetch: int = 100
    bridge_heartbeat_ms: int = 10_000
    bridge_max_message_bytes: int = 64 * 1024
    bridge_receipt_timeout_s: float = 10.0
    # A reply a bridge took from the stream and did not send within this long (it died) is taken by another bridge.
    bridge_orphan_idle_s: float = Field(default=60.0, gt=0)
    bridge_reconnect_max_s: float = 30.0
    bridge_deadletter_queue: str = "DLQ.contactq"
    # A request the bridge accepted and no task answered within this long is looked for in the Celery broker (Redis):
    # in no queue and held by no worker, it was lost, and is sent again, at most `ledger_max_resends` times.
    ledger_overdue_s: float = 30.0
    ledger_max_resends: int = 3

    metrics_address: str = "127.0.0.1"
    metrics_port: int = 9808

    flower_address: str = "127.0.0.1"
    flower_port: int = 5555
    flower_user: str = "admin"
    flower_password: str = "contactq"

    def gewe_token_value(self) -> str:
        """The Gewechat token: from `gewe_token_file` when set (a mounted secret), else `gewe_token`."""
        if self.gewe_token_file is not None:
            return self.gewe_token_file.read_text().strip()
        return self.gewe_token.get_secret_value()

    @model_validator(mode="after")
    def _autoscale_bounds(self) -> Settings:
        if self.worker_autoscale_min > self.worker_autoscale_max:
            raise ValueError("worker_autoscale_min is larger than worker_autoscale_max")
        return self

    @model_validator(mode="after")
    def _orphans_outlive_receipts(self) -> Settings:
        # Otherwise a reply still waiting for its receipt could be taken, and sent, by another bridge too.
        if self.bridge_orphan_idle_s <= self.bridge_receipt_timeout_s:
            raise ValueError("bridge_orphan_idle_s must be longer than bridge_receipt_timeout_s")
        return self

    @field_validator("child_ids", mode="before")
    @classmethod
    def _split_child_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.replace(" ", ",").split(",") if part]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("rate_limits", "topics", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        # Naming one limit or one topic keeps the defaults of the others.
        defaults: dict[str, Any] = _default_rate_limits() if info.field_name == "rate_limits" else _default_topics()
        return {**defaults, **value} if isinstance(value, dict) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        config_file = os.environ.get("CONTACTQ_CONFIG")
        if config_file:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)),)
        return sources


@cache
def get_settings() -> Settings:
    """The process's settings, read once; pass them on from here."""
    return Settings()
