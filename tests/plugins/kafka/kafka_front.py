"""A TLS and SASL/PLAIN front for a plaintext Kafka broker.

The tansu broker these tests run has neither here: its TLS options cannot be combined
(`--cert` and `--key` refuse each other) and its SCRAM users cannot be created in a
memory store once authentication is on. So the tests put this front before it: it ends
TLS with a certificate of the test CA, and — when it has users — performs the broker's
side of the SASL handshake from the public protocol (KIP-43 `SaslHandshake`, KIP-152
`SaslAuthenticate`, mechanism PLAIN from RFC 4616) before it relays a connection's bytes
to the broker. `ApiVersions` requests before authentication are relayed (the client learns
the broker's versions first, as with a real broker); any other request before
authentication closes the connection, as a Kafka broker does. The broker advertises the
front's port, so every connection the client opens goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from pathlib import Path

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


class KafkaFront:
    """Listens on 127.0.0.1:`port`; relays to `upstream` (a plaintext broker)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        port: int,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.upstream = upstream
        self.port = port
        self.users = users
        self.ssl: ssl.SSLContext | None = None
        if cert is not None and key is not None:
            self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl.load_cert_chain(cert, key)
        self.authenticated: list[str] = []
        """User names, one per connection that authenticated."""
        self.refused: list[str] = []
        """User names (or mechanisms) of connections that did not."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, ssl=self.ssl
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            if self.users is not None and not await self._authenticate(
                reader, writer, up_reader, up_writer
            ):
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        assert self.users is not None
        while True:
            frame = await _read_frame(reader)
            api_key, version, correlation = struct.unpack_from(">hhi", frame)
            (client_id_len,) = struct.unpack_from(">h", frame, 8)
            body = 10 + max(client_id_len, 0)
            if api_key == API_VERSIONS:
                up_writer.write(len(frame).to_bytes(4, "big") + frame)
                await up_writer.drain()
                _write_frame(writer, await _read_frame(up_reader))
            elif api_key == SASL_HANDSHAKE:
                (size,) = struct.unpack_from(">h", frame, body)
                mechanism = frame[body + 2 : body + 2 + size].decode()
                error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
                _write_frame(writer, struct.pack(">ihi", correlation, error, 1)
                             + _string("PLAIN"))
                if error:
                    self.refused.append(mechanism)
                    return False
                if version == 0:  # the token follows as a bare frame, the answer likewise
                    user = self._check(await _read_frame(reader))
                    if user is None:
                        return False
                    _write_frame(writer, b"")
                    return True
            elif api_key == SASL_AUTHENTICATE:
                (size,) = struct.unpack_from(">i", frame, body)
                user = self._check(frame[body + 4 : body + 4 + size])
                message = None if user is not None else "Authentication failed: bad credentials"
                answer = struct.pack(
                    ">ih", correlation, 0 if user is not None else SASL_AUTHENTICATION_FAILED
                ) + _nullable_string(message) + struct.pack(">i", 0)
                if version >= 1:
                    answer += struct.pack(">q", 0)
                _write_frame(writer, answer)
                await writer.drain()
                return user is not None
            else:
                return False  # a broker closes a connection that skips authentication
            await writer.drain()

    def _check(self, token: bytes) -> str | None:
        """The user of a PLAIN token (authzid NUL user NUL password) if it is right."""
        assert self.users is not None
        parts = token.split(b"\0")
        if len(parts) != 3:
            self.refused.append("(malformed)")
            return None
        user, password = parts[1].decode(), parts[2].decode()
        if self.users.get(user) != password:
            self.refused.append(user)
            return None
        self.authenticated.append(user)
        return user


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(4), "big")
    return await reader.readexactly(size)


def _write_frame(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(len(body).to_bytes(4, "big") + body)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _nullable_string(text: str | None) -> bytes:
    return struct.pack(">h", -1) if text is None else _string(text)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()
