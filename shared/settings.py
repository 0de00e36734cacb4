"""wapipe's settings: one msgspec Struct, read once from the environment at start-up.

This module is the only reader of ``os.environ``. Every field ``name`` comes from the variable
``WAPIPE_<NAME>``; a secret may instead come from a file named by ``WAPIPE_<NAME>_FILE`` (as
containers mount them). Lists are comma-separated. A missing or malformed value raises
``SettingsError`` naming the variable, never a traceback about a struct field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
from yarl import URL

from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION

PREFIX: Final = "WAPIPE_"
SECRET_FIELDS: Final = frozenset(
    {
        "amqp_url",
        "database_url",
        "app_secrets",
        "verify_token",
        "access_token",
        "flows_private_key",
        "flows_private_key_passphrase",
    }
)


class SettingsError(ValueError):
    """A variable is missing, unreadable or has a value of the wrong shape."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Broker and storage. The broker may be several URLs, comma-separated: the nodes of one
    # RabbitMQ cluster, tried in turn (shared/amqp.py; a comma in a password is written %2C).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = ""  # empty: a SQLite file under ./var/

    # Webhooks from Meta: any of the app secrets may sign (rotation).
    app_secrets: tuple[str, ...] = ()
    verify_token: str = ""

    # The Cloud API (Meta's, or the sandbox's address locally).
    graph_url: str = "https://graph.facebook.com"
    graph_version: str = DEFAULT_GRAPH_VERSION  # the newest (shared/cloudapi/versions.py)
    access_token: str = ""
    # Where WAPIPE_ACCESS_TOKEN_FILE pointed, if it did: the sender reads it again when Meta
    # refuses the token, so a rotated secret is picked up without a restart.
    access_token_file: str = ""
    graph_timeout_s: float = 30.0  # a whole call, retries apart
    graph_max_connections: int = 64  # the client's connection pool, per process
    graph_retries: int = 3  # more tries of a call that failed transiently (or 429)
    # The business number `wapipe send` sends from when --from is not given (`wapipe up` sets
    # it to the sandbox's number).
    phone_number_id: str = ""

    # Ingress.
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    max_body_bytes: int = 3 * 1024 * 1024
    confirm_timeout_s: float = 2.0

    # Workers (`wapipe worker ...`): a batch is up to `worker_batch_size` messages, or what came
    # within `worker_batch_wait_ms` of its first; one transaction each.
    worker_batch_size: int = 500
    worker_batch_wait_ms: float = 20.0
    worker_prefetch: int = 0  # 0: twice the batch size
    worker_max_attempts: int = 5  # tries of a failing message before its dead-letter queue
    worker_retry_base_s: float = 0.2  # back-off before the 2nd try; doubles, with jitter
    worker_retry_max_s: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: the worker's own default (status 9101, message 9102, account 9103)

    # The media worker: where bytes go (a folder; empty: ./var/media), how many downloads at
    # once, the largest accepted, tries per media id (a fresh URL each) before it fails.
    media_dir: str = ""
    media_concurrency: int = 8
    media_max_bytes: int = 100 * 1024 * 1024
    media_attempts: int = 4

    # The message worker's business logic: async functions named "module:function".
    message_handlers: tuple[str, ...] = ()
    mark_read: bool = False  # mark every inbound message read once handled

    # WhatsApp Flows (docs/flows.md): the endpoint's private key(s), PEM (two during a
    # rotation), their passphrase(s); the flow handlers ("module:function"); how long the
    # endpoint waits for a handler's answer (Meta asks for well under a second); how many
    # requests a flows worker handles at once.
    flows_private_key: str = ""
    flows_private_key_passphrase: tuple[str, ...] = ()
    flow_handlers: tuple[str, ...] = ()
    flows_deadline_s: float = 3.0
    flows_concurrency: int = 32

    # The sender (`wapipe worker sender`): each number's throughput (docs/cloudapi/limits.md: 80/s
    # by default, 1,000/s once upgraded, 20/s for coexistence numbers; per number as "<id>=<rate>"),
    # each recipient's pair rate (one message per interval, bursts of up to `sender_pair_burst`),
    # jobs held per shard, tries of a transient failure, and how long a send whose outcome is
    # unknown waits for a status to settle it before it is failed without a resend.
    sender_rate_per_s: float = 80.0
    sender_number_rates: tuple[str, ...] = ()
    sender_pair_interval_s: float = 6.0
    sender_pair_burst: int = 20
    sender_prefetch: int = 1000
    sender_max_attempts: int = 8
    sender_settle_s: float = 600.0
    sender_pause_s: float = 30.0  # a paused number (refused token, account blocked) tries again
    # Media jobs may name a local file to upload only under this folder (any system may
    # publish jobs: no other file on the sender's machine may leave). Empty: none may.
    sender_files_dir: str = ""
    # Refuse template jobs before any call when the template stored by `wapipe templates sync`
    # (or its webhooks) is unknown, not approved, or takes another number of parameters.
    sender_check_templates: bool = False

    # The WhatsApp Business Account `wapipe templates|numbers|analytics` manage.
    waba_id: str = ""

    # Logs: "auto" is JSON lines unless stderr is a terminal.
    log_level: str = "INFO"
    log_format: str = "auto"

    def __repr__(self) -> str:
        shown = {
            name: ("***" if name in SECRET_FIELDS and getattr(self, name) else getattr(self, name))
            for name in self.__struct_fields__
        }
        return f"Settings({shown})"

    __str__ = __repr__


_POSITIVE: Final = (
    "ingress_port",
    "max_body_bytes",
    "confirm_timeout_s",
    "worker_batch_size",
    "graph_timeout_s",
    "graph_max_connections",
    "media_concurrency",
    "media_max_bytes",
    "media_attempts",
    "worker_max_attempts",
    "worker_retry_base_s",
    "worker_retry_max_s",
    "sender_rate_per_s",
    "sender_pair_interval_s",
    "sender_pair_burst",
    "sender_prefetch",
    "sender_max_attempts",
    "sender_settle_s",
    "sender_pause_s",
    "flows_deadline_s",
    "flows_concurrency",
)
_NOT_NEGATIVE: Final = ("worker_batch_wait_ms", "worker_prefetch", "metrics_port", "graph_retries")
_CHOICES: Final = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "log_format": ("auto", "json", "text"),
}


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        text = _read(env, field.name)
        if text is None:
            continue
        raw[field.name] = _split(text) if _is_list(field.type) else text
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc, raw)) from None
    _check(settings)
    return settings


def _read(env: Mapping[str, str], field: str) -> str | None:
    name = env_name(field)
    if field in SECRET_FIELDS and (path := env.get(name + "_FILE")):
        if name in env:
            raise SettingsError(f"{name} and {name}_FILE are both set; set only one")
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {path!r}: {exc.strerror}") from None
    return env.get(name)


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) in (tuple, list)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _explain(exc: msgspec.ValidationError, raw: Mapping[str, Any]) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.ingress_port`": name the variable,
    # and show the value unless it is a secret.
    message = str(exc)
    head, sep, path = message.rpartition(" - at `$.")
    if not sep:
        return message
    field = path.rstrip("`").split("[", 1)[0]
    expected = head.replace("`", "").split(",", 1)[0].lower()
    shown = "" if field in SECRET_FIELDS else f", got {raw.get(field)!r}"
    return f"{env_name(field)}: {expected}{shown}"


def _check(settings: Settings) -> None:
    for field in _POSITIVE:
        if getattr(settings, field) <= 0:
            raise SettingsError(f"{env_name(field)}: must be greater than 0")
    for field in _NOT_NEGATIVE:
        if getattr(settings, field) < 0:
            raise SettingsError(f"{env_name(field)}: must not be negative")
    for field, allowed in _CHOICES.items():
        if getattr(settings, field) not in allowed:
            raise SettingsError(f"{env_name(field)}: must be one of {', '.join(allowed)}")
    number_rates(settings)
    _check_amqp_url(settings.amqp_url)


def broker_urls(amqp_url: str) -> list[str]:
    """``WAPIPE_AMQP_URL`` as its nodes' URLs, in the order given."""
    return [part.strip() for part in amqp_url.split(",")]


def _check_amqp_url(amqp_url: str) -> None:
    """A malformed broker URL fails here, in one line, not as a traceback deep in a client or a
    hang. The URL is not shown: it carries the password."""
    urls = broker_urls(amqp_url)
    for position, url in enumerate(urls, 1):
        problem = _url_problem(url)
        if problem is None:
            continue
        which = f"address {position} of {len(urls)}: " if len(urls) > 1 else ""
        example = "amqp://user:password@host:5672/vhost"
        if len(urls) > 1:
            example += ",amqp://user:password@host2:5672/vhost"
        raise SettingsError(f"{env_name('amqp_url')}: {which}{problem} (e.g. {example})")


def _url_problem(url: str) -> str | None:
    if not url:
        return "is empty"
    scheme = url.partition("://")[0] if "://" in url else ""
    try:
        parsed = URL(url)
        host, port = parsed.host, parsed.explicit_port
    except ValueError:
        host, port = None, -1
    if scheme not in ("amqp", "amqps"):
        return "must start with amqp:// or amqps://"
    if port is not None and not 0 < port < 65536:
        return "its port must be a number from 1 to 65535"
    if not host:
        return "names no host"
    return None


def number_rates(settings: Settings) -> dict[str, float]:
    """``WAPIPE_SENDER_NUMBER_RATES`` (``<phone number id>=<messages/s>``, comma-separated)."""
    rates: dict[str, float] = {}
    for item in settings.sender_number_rates:
        number, _, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = 0.0
        if not number.strip() or value <= 0:
            raise SettingsError(
                f"{env_name('sender_number_rates')}: {item!r}: give <phone number id>=<rate>"
            )
        rates[number.strip()] = value
    return rates


def require(settings: Settings, *fields: str) -> None:
    """Fail clearly when a service starts without a value it cannot do without."""
    missing = [env_name(field) for field in fields if not getattr(settings, field)]
    if missing:
        raise SettingsError(f"{', '.join(missing)}: required, set it (or <NAME>_FILE)")
