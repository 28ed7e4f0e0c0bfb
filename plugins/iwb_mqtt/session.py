"""The inbound side of a listener's MQTT connection: late acknowledgements and backpressure.

paho-mqtt, under aiomqtt, acknowledges a QoS 1 message (PUBACK) as soon as it has read it,
and answers a QoS 2 message with PUBREC at once, holding the message back until the broker's
PUBREL. aiomqtt 2.5 offers no manual acknowledgement, and paho's own `manual_ack` defers
only the PUBACK and the *final* QoS 2 step (PUBCOMP) — after PUBREC the broker has already
let go of the message, so a crash would lose it. `Inbound` therefore takes over three steps
of the paho client it wraps:

- the PUBACK (QoS 1) and PUBREC (QoS 2) of a received message are deferred until the
  listener settles it, i.e. until the handler's outcome is known;
- a QoS 2 message is delivered as soon as its PUBLISH arrives (not at PUBREL, which comes
  only after our PUBREC). paho still answers the broker's PUBREL with PUBCOMP;
- messages go to a buffer of its own; when `high_water` messages are waiting, it stops
  reading from the socket until the buffer is half empty (TCP backpressure: the broker
  cannot push QoS 0 floods into unbounded memory). Reading pauses only once the
  subscriptions are made, and only this listener's connection pauses (its publishes, dead
  letters included, go through the connection's own client): nothing it waits for has to
  be read from a paused socket.

A message that is never acknowledged (the process was killed, the connection dropped) is
sent again by the broker when the session resumes — with a persistent session
(`clean_session=False`) that is at-least-once delivery, for QoS 2 too: the handler may see
a message twice (after a crash between its end and the acknowledgement), never zero times.

With `in_order=True` acknowledgements leave in the order the messages arrived, as MQTT
section 4.6 asks of a client: a settled message waits for every earlier one.

The hooks touch paho-mqtt 2.x internals (`_send_puback`, `_send_pubrec`, `_handle_publish`,
`_in_messages`) and aiomqtt's `_client` and `_disconnected`; the plugin's broker tests
exercise each of them against a real Mosquitto (kill -9 with QoS 1 and QoS 2).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from iwb_mqtt.errors import MqttDisconnectedError

if TYPE_CHECKING:
    import aiomqtt
    from paho.mqtt.client import MQTTMessage

__all__ = ["Delivery", "Inbound"]


class Delivery:
    """One received QoS 1/2 message waiting for its acknowledgement (the token the listener
    passes through its lanes)."""

    __slots__ = ("done", "mid", "qos")

    def __init__(self, mid: int, qos: int) -> None:
        self.mid = mid
        self.qos = qos
        self.done = False

    def __repr__(self) -> str:
        return f"Delivery(mid={self.mid}, qos={self.qos}, done={self.done})"


class Inbound:
    """Takes over the inbound path of one `aiomqtt.Client` (create it before connecting).

    Args:
        client: the client, not yet connected.
        high_water: messages waiting in the buffer before reading pauses.
        in_order: send acknowledgements in the order the messages arrived.
    """

    def __init__(self, client: aiomqtt.Client, *, high_water: int, in_order: bool) -> None:
        self._client = client
        self._paho: Any = cast(Any, client._client)
        self._loop = asyncio.get_running_loop()
        self._buffer: deque[tuple[MQTTMessage, Delivery | None]] = deque()
        self._high = max(1, high_water)
        self._low = self._high // 2
        self._paused_fd: int | None = None
        self._flow_control = False
        self._wakeup = asyncio.Event()
        self._in_order = in_order
        self._unacked: deque[Delivery] = deque()
        self._pending = 0
        self._closed: BaseException | None = None
        self._early: list[int] = []
        self.acked = 0
        """Acknowledgements sent (PUBACK or PUBREC)."""
        self.max_buffered = 0
        """The most messages that ever waited in the buffer at once."""
        paho = self._paho
        self._send = {1: paho._send_puback, 2: paho._send_pubrec}
        self._handle_publish = paho._handle_publish
        paho._send_puback = self._defer
        paho._send_pubrec = self._defer_pubrec
        paho._handle_publish = self._on_publish_packet
        paho.on_message = self._on_message

    # ------------------------------------------------------------------ paho side

    def _defer(self, mid: int) -> int:
        return 0  # MQTT_ERR_SUCCESS: sent later, by settle()

    def _defer_pubrec(self, mid: int) -> int:
        self._early.append(mid)
        return 0

    def _on_publish_packet(self) -> int:
        rc: int = self._handle_publish()
        if self._early:
            # A QoS 2 PUBLISH: paho parked it until PUBREL; deliver it now instead.
            paho = self._paho
            with paho._in_message_mutex:
                parked = [paho._in_messages.pop(mid, None) for mid in self._early]
            self._early.clear()
            for message in parked:
                if message is not None:
                    paho._handle_on_message(message)
        return rc

    def _on_message(self, _client: Any, _userdata: Any, message: MQTTMessage) -> None:
        delivery = None
        if message.qos:
            delivery = Delivery(message.mid, message.qos)
            self._pending += 1
            if self._in_order:
                self._unacked.append(delivery)
        buffer = self._buffer
        buffer.append((message, delivery))
        size = len(buffer)
        if size > self.max_buffered:
            self.max_buffered = size
        if size >= self._high and self._flow_control and self._paused_fd is None:
            self._pause()
        self._wakeup.set()

    def _pause(self) -> None:
        sock = self._paho.socket()
        if sock is None:
            return
        fd = sock.fileno()
        if fd >= 0:
            # not `if remove_reader(fd)`: uvloop returns None where asyncio returns a bool
            self._loop.remove_reader(fd)
            self._paused_fd = fd

    def _resume(self) -> None:
        fd, self._paused_fd = self._paused_fd, None
        sock = self._paho.socket()
        if fd is not None and sock is not None and sock.fileno() == fd:
            self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        # What aiomqtt's own reader callback does (it is replaced once reading resumes).
        paho = self._paho
        try:
            while True:
                paho.loop_read()
                sock = paho._sock
                if sock is not None and hasattr(sock, "pending") and sock.pending() > 0:
                    continue
                break
        except Exception as exc:
            disconnected = self._client._disconnected
            if not disconnected.done():
                disconnected.set_exception(exc)

    # ------------------------------------------------------------------ listener side

    def connected(self) -> None:
        """Call once the client is connected: from now on a dropped connection ends `get`."""
        disconnected = self._client._disconnected
        disconnected.add_done_callback(self._on_disconnected)

    def start_flow_control(self) -> None:
        """Pause reading whenever the buffer is full, from now on. Call it once the
        subscriptions are made: a session that resumes may be sent many messages before
        the SUBACK, which must still be read."""
        self._flow_control = True
        if len(self._buffer) >= self._high and self._paused_fd is None:
            self._pause()

    def _on_disconnected(self, future: asyncio.Future[None]) -> None:
        exc = None if future.cancelled() else future.exception()
        self._closed = MqttDisconnectedError(
            "The connection to the MQTT broker was lost"
            + (f": {type(exc).__name__}: {exc}" if exc else "")
            + "; unacknowledged messages will be delivered again when the session resumes."
        )
        self._wakeup.set()

    def close(self, reason: BaseException) -> None:
        """Make `get` raise `reason` (once the buffer is empty or right away)."""
        self._closed = reason
        self._wakeup.set()

    async def get(self) -> tuple[MQTTMessage, Delivery | None]:
        """The next message in arrival order, with its delivery token (None for QoS 0).
        Raises `MqttDisconnectedError` when the connection is lost."""
        buffer = self._buffer
        while not buffer:
            if self._closed is not None:
                raise self._closed
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed is not None:
            raise self._closed
        item = buffer.popleft()
        if self._paused_fd is not None and len(buffer) <= self._low:
            self._resume()
        return item

    def settle(self, delivery: Delivery | None) -> None:
        """The outcome of `delivery` is known: acknowledge it (in order, when asked)."""
        if delivery is None or delivery.done:
            return
        delivery.done = True
        if not self._in_order:
            self._ack(delivery)
            return
        unacked = self._unacked
        while unacked and unacked[0].done:
            self._ack(unacked.popleft())

    def _ack(self, delivery: Delivery) -> None:
        # A failure to send (the connection is gone) needs no handling: the broker sends
        # the message again when the session resumes.
        self._send[delivery.qos](delivery.mid)
        self._pending -= 1
        self.acked += 1

    @property
    def unacked(self) -> int:
        """Messages received with QoS 1/2 and not yet acknowledged."""
        return self._pending

    @property
    def buffered(self) -> int:
        """Messages received and not yet taken by `get`."""
        return len(self._buffer)
