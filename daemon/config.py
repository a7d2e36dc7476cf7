"""Configuration: one TOML file, every key known and checked.

Lookup order: ``--config PATH``, else ``./wiredesk.toml``, else ``<user config dir>/wiredesk/wiredesk.toml``, else
built-in defaults. ``WIREDESK_DATABASE_URL`` overrides ``database.url``. ``config.example.toml`` documents every key;
a test keeps it in step with ``SCHEMA`` below.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from daemon.errors import ConfigError

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
        "max_interval_minutes": ((int, float), 1440),
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
        "window_days": ((int, float), 7),
        "max_entries": ((int,), 100),
        "folders": ((list,), []),
        "feeds": ((list,), []),
    },
    "server": {
        "host": ((str,), "127.0.0.1"),
        "port": ((int,), 8080),
    },
    "redis": {
        "url": ((str,), ""),
    },
    "log": {
        "level": ((str,), "INFO"),
    },
}
FEED_KEYS = {"url": (str,), "title": (str,), "folder": (str,)}
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class FeedConfig:
    url: str
    title: str | None = None
    folder: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None
    values: dict[str, dict[str, Any]]
    feeds: tuple[FeedConfig, ...] = field(default_factory=tuple)

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
            raise ConfigError(f"config file {explicit} does not exist (copy config.example.toml there or drop --config)")
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
        names = " or ".join("number" if t in (int, float) else {str: "string", list: "list", bool: "true/false"}.get(t, t.__name__) for t in types)
        raise ConfigError(f"{where} must be a {names}, not {value!r}")
    return float(value) if float in types and not isinstance(value, bool) else value


def parse(text: str, path: Path | None = None) -> Config:
    name = str(path) if path else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc}); see config.example.toml") from exc
    values: dict[str, dict[str, Any]] = {s: {k: d for k, (_, d) in keys.items()} for s, keys in SCHEMA.items()}
    feeds: list[FeedConfig] = []
    for section, body in raw.items():
        if section == "feeds":
            if not isinstance(body, list):
                raise ConfigError(f"{name}: 'feeds' must be an array of tables ([[feeds]] with url = ...)")
            for i, item in enumerate(body, 1):
                if not isinstance(item, dict) or "url" not in item:
                    raise ConfigError(f"{name}: feeds #{i} needs a url (url = \"https://...\")")
                for key, value in item.items():
                    if key not in FEED_KEYS:
                        raise ConfigError(f"{name}: unknown key feeds.{key} in feeds #{i} (known: {', '.join(FEED_KEYS)})")
                    _check_type(f"{name}: feeds #{i}.{key}", value, FEED_KEYS[key])
                feeds.append(FeedConfig(item["url"], item.get("title"), item.get("folder")))
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
    level = str(values["log"]["level"]).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{name}: log.level must be one of {', '.join(sorted(LOG_LEVELS))}, not {values['log']['level']!r}")
    values["log"]["level"] = level
    for key in ("timeout", "connect_timeout", "max_bytes", "max_connections", "max_per_host"):
        if values["fetch"][key] <= 0:
            raise ConfigError(f"{name}: fetch.{key} must be positive")
    if not 0.1 <= values["schedule"]["tick_seconds"] <= 3600:
        raise ConfigError(f"{name}: schedule.tick_seconds must be between 0.1 and 3600")
    if values["schedule"]["min_interval_minutes"] < 1:
        raise ConfigError(f"{name}: schedule.min_interval_minutes must be at least 1")
    return Config(path, values, tuple(feeds))


def load(explicit: str | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        config = parse("")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
        config = parse(text, path)
    url = os.environ.get("WIREDESK_DATABASE_URL") or config.values["database"]["url"] or default_database_url()
    config.values["database"]["url"] = url
    return config
