"""What a desk adapter package gives the registry, and the view of its sink it is built from.

A desk package (``adapters/<desk>/``) owns its payload mapping (``mapping.py``) and the parsing
of its own sink keys (``config.py``), and exports ``DESK``: its ``type`` name, the keys it reads
and a factory ``(SinkNode, env) -> Adapter``. The keys every sink shares (name, type, secrets,
retry timing, TLS) are parsed once, in ``collector/delivery/sinks.py``.

Errors are ``ConfigError`` with file, line and key; secret values never appear in them, only
the names of the environment variables holding them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from collector.config.errors import ConfigError
from collector.config.yamlfile import Node
from collector.delivery.request import Adapter


@dataclass(frozen=True, slots=True)
class SinkNode:
    """One entry of a sinks file's ``sinks`` list: its keys, each with its line."""

    node: Node
    keys: Mapping[str, Node]

    def missing(self, key: str, problem: str = "required") -> ConfigError:
        return ConfigError(self.node.source, f"{self.node.key}.{key}", problem, self.node.line)

    def text(self, key: str) -> str:
        """A required non-empty string."""
        if key not in self.keys:
            raise self.missing(key, "required text, missing")
        return self.keys[key].text()

    def optional_text(self, key: str) -> str | None:
        node = self.keys.get(key)
        return None if node is None or node.is_null() else node.text()

    def text_map(self, key: str, allowed: frozenset[str] | None = None) -> dict[str, str]:
        """A mapping of strings to strings (numbers become text); absent is empty."""
        node = self.keys.get(key)
        if node is None or node.is_null():
            return {}
        return {name: value.text() for name, value in node.mapping(allowed).items()}

    def url(self, default: str | None = None) -> str:
        """An http(s) URL: ``url``, or ``default`` when the key is absent and one exists."""
        if "url" not in self.keys and default is not None:
            return default
        url = self.text("url")
        if not url.startswith(("https://", "http://")):
            raise self.keys["url"].error(f"not an http(s) URL: {shown_url(url)!r}")
        return url

    def secret(self, key: str, env: Mapping[str, str]) -> str | None:
        """The value of the environment variable that ``key`` names; None when it names none."""
        node = self.keys.get(key)
        if node is None or node.is_null():
            return None
        var = node.text()
        if var not in env:
            raise node.error(f"environment variable {var!r} is not set")
        return env[var]

    def required_secret(self, key: str, env: Mapping[str, str], why: str) -> str:
        secret = self.secret(key, env)
        if secret is None:
            raise self.missing(key, why)
        return secret


def shown_url(url: str) -> str:
    """``url`` without a password written into it (``https://user:***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<not a URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


Factory = Callable[[SinkNode, Mapping[str, str]], Adapter]


@dataclass(frozen=True, slots=True)
class Desk:
    """A desk adapter as the registry knows it."""

    name: str  # the sink's ``type``
    keys: frozenset[str]  # the sink keys this desk reads, besides the shared ones
    build: Factory
    credentials_in_body: bool = False  # e.g. PagerDuty's routing key: HTTPS required
