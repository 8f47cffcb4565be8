"""The delivery worker's HTTP client: one connection pool per sink, over aiohttp.

Why aiohttp and not httpx (which the TSDB shipper and the tests use): a webhook costs the
sending process about a third of the interpreter time with aiohttp (its HTTP parser is
compiled). Measured here, same receiver on loopback, CPU time per POST with a 1 KiB body:
httpx.AsyncClient 3.2 ms, aiohttp 1.0 ms, urllib3 from a thread 1.4 ms. In the collector the
worker shares the interpreter with the MQTT intake, so that time is taken from the intake and
from the next webhook (docs/tickets.md, Performance).

What a failure is called is ours, not the library's, so ``last_error`` reads the same whatever
the client: ``connect_failed: ...`` (refused, no route, a certificate not trusted: the text
names it, e.g. ``CERTIFICATE_VERIFY_FAILED``), ``timeout: ...`` (no whole answer within the
sink's ``timeout_s``), ``connection_lost: ...`` (the desk closed the connection mid-answer) and
``http_error: ...`` (anything else the client refused, e.g. a malformed answer).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp

# A desk's answer is a small JSON document; a larger one is cut here, not held in memory.
MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> object:
        """The answer as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class RequestFailed(Exception):
    """No answer: ``reason`` says why, in the words of the module docstring."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SinkClient:
    """Requests to one sink: kept-alive connections, its timeout, its trust store.

    TLS is verified against ``ca_file`` when the sink names one, else the system's trust store.
    Redirects are not followed: a desk that answers 3xx is refused like any other non-2xx
    answer, so a webhook never goes to an address the sinks file does not name."""

    def __init__(self, timeout_s: float, ca_file: str | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._tls = ssl.create_default_context(cafile=ca_file)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SinkClient:
        connector = aiohttp.TCPConnector(ssl=self._tls)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),  # the worker sends its own
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Answer:
        if self._session is None:
            raise RuntimeError("SinkClient used outside 'async with'")
        try:
            async with self._session.request(
                method, url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                return Answer(response.status, response.headers, await _head_of(response))
        except TimeoutError:
            raise RequestFailed(f"timeout: no answer within {self._timeout.total:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise RequestFailed(f"connect_failed: {exc}") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise RequestFailed(f"connection_lost: {exc or type(exc).__name__}") from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError) as exc:
            raise RequestFailed(f"http_error: {type(exc).__name__}: {exc}".rstrip(": ")) from None


async def _head_of(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body up to ``MAX_ANSWER_BYTES`` (a read returns what has arrived so far,
    so it is read in chunks until the end or the limit)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk[: MAX_ANSWER_BYTES - size])
        size += len(chunks[-1])
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)
