"""Configuration: one TOML file, every key known and checked.

Lookup order: ``--config PATH``, else ``./wiredesk.toml``, else ``<user config dir>/wiredesk/wiredesk.toml``, else
built-in defaults. ``WIREDESK_DATABASE_URL`` overrides ``database.url``. ``config.example.toml`` documents every key;
a test keeps it in step with ``SCHEMA`` below.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from daemon.errors import ConfigError
from daemon.fetch.urls import http_url_problem

APP = "wiredesk"

# section -> key -> (accepted types, default). None as default means "computed" (see load()).
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "database": {
        "url": ((str,), None),
    },
    "fetch": {
        "timeout": ((int, float), 30.0),
        "connect_timeout": ((int, float), 10.0),
        "max_bytes": ((int,), 10 * 1024 * 1024),
        "max_redirects": ((int,), 5),
        "max_connections": ((int,), 20),
        "max_per_host": ((int,), 2),
        "user_agent": ((str,), ""),
        "allow_networks": ((list,), []),
        "fetch_articles": ((bool,), True),
        "max_entries_per_feed": ((int,), 500),
        "max_article_chars": ((int,), 200_000),
    },
    "schedule": {
        "interval_minutes": ((int, float), 30),
        "min_interval_minutes": ((int, float), 5),
        "max_interval_minutes": ((int, float), 60),
        "backoff_minutes": ((int, float), 10),
        "max_backoff_minutes": ((int, float), 1440),
        "parse_workers": ((int,), 0),
        "tick_seconds": ((int, float), 30),
        "lease_seconds": ((int, float), 600),
    },
    "digest": {
        "title": ((str,), "wiredesk digest"),
        "base_url": ((str,), "http://127.0.0.1:8080/"),
        "preferred_outlets": ((list,), []),
        "min_outlets": ((int,), 1),
        "window_days": ((int, float), 0),
        "max_entries": ((int,), 100),
        "timezone": ((str,), "UTC"),
        "folders": ((list,), []),
        "feeds": ((list,), []),
    },
    "server": {
        "host": ((str,), "127.0.0.1"),
        "port": ((int,), 8080),
        "base_url": ((str,), ""),
        "max_connections": ((int,), 64),
        "request_timeout": ((int, float), 30.0),
        "token": ((str,), ""),
        "metrics_open": ((bool,), False),
    },
    "redis": {
        "url": ((str,), ""),
    },
    "engine": {
        "semantic": ((bool,), True),
        "model_dir": ((str,), ""),
        "settle_minutes": ((int, float), 5),
        "precision": ((str,), "int8"),
    },
    "log": {
        "level": ((str,), "INFO"),
    },
}
FEED_KEYS = {
    "url": (str,),
    "title": (str,),
    "folder": (str,),
    "interval_minutes": (int, float),
    "fetch_articles": (bool,),
}
MAX_OUTLET_NAME_CHARS = 256
MAX_OUTLETS = 10_000
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

# Longest feed title and folder name taken from the config, the command line or an OPML file (the folder column
# holds 255 characters).
MAX_FEED_TITLE_CHARS = 1024
MAX_FOLDER_CHARS = 255


# ---- what each value may be ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """What a value may be: ``text`` completes "must be ..." in the error message, ``test`` says whether it is."""

    text: str
    test: Callable[[Any], bool]


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def number(low: float, high: float, *, above: bool = False) -> Allowed:
    """A finite number from ``low`` (excluded when ``above``) to ``high``."""
    text = f"a number above {low:g} and at most {high:g}" if above else f"a number from {low:g} to {high:g}"
    return Allowed(text, lambda v: _finite(v) and (v > low if above else v >= low) and v <= high)


def whole(low: int, high: int) -> Allowed:
    return Allowed(f"a whole number from {low} to {high}", lambda v: low <= v <= high)


def _plain(value: str, max_chars: int) -> bool:
    # control and format characters (NUL, newlines, bidi overrides) would break headers, log lines and pages
    return len(value) <= max_chars and not any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


def text(max_chars: int, *, empty: bool = True) -> Allowed:
    what = f"text of at most {max_chars} characters without control characters"
    return Allowed(
        what if empty else f"non-empty {what}", lambda v: (empty or bool(v.strip())) and _plain(v, max_chars)
    )


def strings(max_items: int, max_chars: int) -> Allowed:
    return Allowed(
        f"a list of at most {max_items} strings, each at most {max_chars} characters without control characters",
        lambda v: len(v) <= max_items and all(isinstance(s, str) and _plain(s, max_chars) for s in v),
    )


def _is_network(value: Any) -> bool:
    try:
        ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return False
    return isinstance(value, str)


def _is_zone(value: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not value or len(value) > 64 or not _plain(value, 64) or value.startswith(("/", ".")) or ".." in value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")


def _http_url(value: str) -> bool:
    return http_url_problem(value) is None


def _redis_url(value: str) -> bool:
    if not value:
        return True
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsed for its ValueError
    except ValueError:
        return False
    if parts.scheme == "unix":
        return bool(parts.path) and _plain(value, 2048)
    return parts.scheme in ("redis", "rediss") and bool(parts.hostname) and _plain(value, 2048)


# Every value is checked at load against its entry here; a key without one gets the rule for its type (_BY_TYPE).
# config.example.toml states the same ranges in its comments.
ALLOWED: dict[str, Allowed] = {
    "database.url": text(4096),
    "fetch.timeout": number(0, 3600, above=True),
    "fetch.connect_timeout": number(0, 600, above=True),
    "fetch.max_bytes": whole(1024, 1024**3),
    "fetch.max_redirects": whole(0, 20),
    "fetch.max_connections": whole(1, 1000),
    "fetch.max_per_host": whole(1, 100),
    "fetch.user_agent": text(512),
    "fetch.allow_networks": Allowed(
        'a list of IP networks such as "192.168.1.0/24" or "::1/128"', lambda v: all(_is_network(n) for n in v)
    ),
    "fetch.max_entries_per_feed": whole(1, 100_000),
    "fetch.max_article_chars": whole(1, 10_000_000),
    "schedule.interval_minutes": number(0, 43200, above=True),
    "schedule.min_interval_minutes": number(1, 43200),
    "schedule.max_interval_minutes": number(1, 43200),
    "schedule.backoff_minutes": number(0, 43200, above=True),
    "schedule.max_backoff_minutes": number(0, 43200, above=True),
    "schedule.parse_workers": whole(0, 256),
    "schedule.tick_seconds": number(0.1, 3600),
    "schedule.lease_seconds": number(0, 86400, above=True),
    "digest.title": text(256),
    "digest.base_url": Allowed('an http(s) URL with a host, such as "https://news.example.org/"', _http_url),
    "digest.preferred_outlets": strings(1000, 256),
    "digest.min_outlets": whole(1, 1000),
    "digest.window_days": number(0, 100_000),  # about 270 years: any date a feed carries is within reach
    "digest.max_entries": whole(1, 10_000),
    "digest.timezone": Allowed('a time zone name such as "UTC" or "Asia/Seoul"', lambda v: _is_zone(v)),
    "digest.folders": strings(1000, MAX_FOLDER_CHARS),
    "digest.feeds": strings(10_000, 2048),
    "server.host": text(255, empty=False),
    "server.port": whole(0, 65535),
    "server.max_connections": whole(1, 10_000),
    "server.request_timeout": number(0, 3600, above=True),
    "server.token": Allowed(
        "empty, or 16 to 256 characters of letters, digits and -._~+/= (e.g. from `openssl rand -hex 32`)",
        lambda v: not v or (16 <= len(v) <= 256 and _TOKEN.fullmatch(v) is not None),
    ),
    "server.base_url": Allowed(
        "empty, or the http(s) URL where WebSub hubs reach this server", lambda v: not v.strip() or _http_url(v)
    ),
    "redis.url": Allowed(
        'empty or a redis://, rediss:// or unix:// URL, such as "redis://127.0.0.1:6379/0"', _redis_url
    ),
    "engine.model_dir": text(4096),
    "engine.settle_minutes": number(0, 1440),
    "engine.precision": Allowed('"int8" or "float32"', lambda v: v in ("int8", "float32")),
    "log.level": Allowed(f"one of {', '.join(sorted(LOG_LEVELS))}", lambda v: v.upper() in LOG_LEVELS),
}
_BY_TYPE: dict[type, Allowed] = {
    bool: Allowed("true or false", lambda v: True),
    int: Allowed("a finite number", _finite),
    float: Allowed("a finite number", _finite),
    str: text(4096),
    list: strings(10_000, 4096),
}
# Pairs that must be in order: (lower, upper).
ORDERED: tuple[tuple[str, str], ...] = (
    ("schedule.min_interval_minutes", "schedule.max_interval_minutes"),
    ("schedule.backoff_minutes", "schedule.max_backoff_minutes"),
)
FEED_ALLOWED: dict[str, Allowed] = {
    "url": Allowed("an http(s) URL with a host", lambda v: _http_url(v.strip())),
    "title": text(MAX_FEED_TITLE_CHARS),
    "folder": text(MAX_FOLDER_CHARS),
    "interval_minutes": number(1, 43200),
    "fetch_articles": Allowed("true or false", lambda v: isinstance(v, bool)),
}


def allowed_for(section: str, key: str) -> Allowed:
    rule = ALLOWED.get(f"{section}.{key}")
    if rule is None:
        types = SCHEMA[section][key][0]
        rule = _BY_TYPE.get(bool if types == (bool,) else types[0], _BY_TYPE[str])
    return rule


def _shown(value: Any) -> str:
    # a whole number as written (integers are read as floats where fractions are allowed)
    shown = repr(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def validate(values: dict[str, dict[str, Any]], name: str = "config") -> None:
    """Every value against its rule, then the ordered pairs: ConfigError naming the key and what it must be."""
    for section, keys in values.items():
        for key, value in keys.items():
            if value is None:  # computed at load (database.url)
                continue
            rule = allowed_for(section, key)
            if not rule.test(value):
                raise ConfigError(f"{name}: {section}.{key} = {_shown(value)} is not allowed: it must be {rule.text}")
    for low, high in ORDERED:
        (ls, lk), (hs, hk) = low.split("."), high.split(".")
        if values[ls][lk] > values[hs][hk]:
            raise ConfigError(
                f"{name}: {high} = {values[hs][hk]:g} is below {low} = {values[ls][lk]:g}: it must be at least {low}"
            )


@dataclass(frozen=True)
class FeedConfig:
    url: str
    title: str | None = None
    folder: str | None = None
    interval_minutes: float | None = None  # the feed's own poll interval; None: the adaptive schedule
    fetch_articles: bool | None = None  # None: [fetch] fetch_articles


@dataclass(frozen=True)
class Config:
    path: Path | None
    values: dict[str, dict[str, Any]]
    feeds: tuple[FeedConfig, ...] = field(default_factory=tuple)
    # [outlets]: a publisher's registered domain -> the name the digest shows for it
    outlets: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    @property
    def database_url(self) -> str:
        return self.values["database"]["url"]


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'wiredesk.db'}"


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist (copy config.example.toml there or drop --config)"
            )
        return path
    for candidate in (Path("wiredesk.toml"), Path(platformdirs.user_config_dir(APP)) / "wiredesk.toml"):
        if candidate.is_file():
            return candidate
    return None


def _check_type(where: str, value: Any, types: tuple[type, ...]) -> Any:
    # bool is an int in Python; a boolean where a number is expected is a mistake worth reporting.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(
            "number" if t in (int, float) else {str: "string", list: "list", bool: "true/false"}.get(t, t.__name__)
            for t in types
        )
        raise ConfigError(f"{where} must be a {names}, not {value!r}")
    return float(value) if float in types and not isinstance(value, bool) else value


def parse(text: str, path: Path | None = None) -> Config:
    name = str(path) if path else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc}); see config.example.toml") from exc
    except RecursionError as exc:
        raise ConfigError(f"{name}: arrays or tables nested too deeply; see config.example.toml") from exc
    values: dict[str, dict[str, Any]] = {s: {k: d for k, (_, d) in keys.items()} for s, keys in SCHEMA.items()}
    feeds: list[FeedConfig] = []
    outlets: dict[str, str] = {}
    for section, body in raw.items():
        if section == "outlets":
            outlets = _outlets(body, name)
            continue
        if section == "feeds":
            if not isinstance(body, list):
                raise ConfigError(f"{name}: 'feeds' must be an array of tables ([[feeds]] with url = ...)")
            for i, item in enumerate(body, 1):
                if not isinstance(item, dict) or "url" not in item:
                    raise ConfigError(f'{name}: feeds #{i} needs a url (url = "https://...")')
                for key, value in item.items():
                    if key not in FEED_KEYS:
                        raise ConfigError(
                            f"{name}: unknown key feeds.{key} in feeds #{i} (known: {', '.join(FEED_KEYS)})"
                        )
                    _check_type(f"{name}: feeds #{i}.{key}", value, FEED_KEYS[key])
                    if key == "url" and http_url_problem(value.strip()):
                        raise ConfigError(
                            f"{name}: feeds #{i}: {_shown(value)} is not an http(s) URL a feed can be "
                            f"read from: {http_url_problem(value.strip())}"
                        )
                    if not FEED_ALLOWED[key].test(value):
                        raise ConfigError(
                            f"{name}: feeds #{i}.{key} = {_shown(value)} is not allowed: it must be "
                            f"{FEED_ALLOWED[key].text}"
                        )
                feeds.append(
                    FeedConfig(
                        item["url"],
                        item.get("title"),
                        item.get("folder"),
                        float(item["interval_minutes"]) if "interval_minutes" in item else None,
                        item.get("fetch_articles"),
                    )
                )
            continue
        if section not in SCHEMA:
            raise ConfigError(f"{name}: unknown section [{section}] (known: {', '.join([*SCHEMA, 'feeds'])})")
        if not isinstance(body, dict):
            raise ConfigError(f"{name}: [{section}] must be a table")
        for key, value in body.items():
            if key not in SCHEMA[section]:
                raise ConfigError(
                    f"{name}: unknown key {section}.{key} (known in [{section}]: {', '.join(SCHEMA[section])})"
                )
            values[section][key] = _check_type(f"{name}: {section}.{key}", value, SCHEMA[section][key][0])
    validate(values, name)
    values["log"]["level"] = values["log"]["level"].upper()
    return Config(path, values, tuple(feeds), outlets)


def _outlets(body: Any, name: str) -> dict[str, str]:
    """[outlets]: "koreaherald.com" = "The Korea Herald", one line per publisher (its registered domain)."""
    if not isinstance(body, dict):
        raise ConfigError(f'{name}: [outlets] must be a table of "domain" = "name" lines')
    if len(body) > MAX_OUTLETS:
        raise ConfigError(f"{name}: [outlets] names more than {MAX_OUTLETS} publishers")
    out: dict[str, str] = {}
    for domain, shown in body.items():
        key = domain.strip().lower().rstrip(".")
        if not key or len(key) > 253 or not all(c.isalnum() or c in ".-" for c in key) or "." not in key:
            raise ConfigError(f'{name}: outlets.{_shown(domain)} is not a domain such as "koreaherald.com"')
        if not isinstance(shown, str) or not shown.strip() or not _plain(shown, MAX_OUTLET_NAME_CHARS):
            raise ConfigError(
                f"{name}: outlets.{domain} = {_shown(shown)} is not allowed: it must be non-empty text "
                f"of at most {MAX_OUTLET_NAME_CHARS} characters without control characters"
            )
        out[key] = shown.strip()
    return out


MAX_CONFIG_BYTES = 16 * 1024 * 1024  # 100,000 [[feeds]] fit in a few megabytes


def load(explicit: str | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        config = parse("")
    else:
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes; is it the right file?")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
        config = parse(text, path)
    url = os.environ.get("WIREDESK_DATABASE_URL") or config.values["database"]["url"] or default_database_url()
    config.values["database"]["url"] = url
    return config
