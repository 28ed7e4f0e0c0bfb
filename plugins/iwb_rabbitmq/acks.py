"""Acknowledgements of one channel's deliveries, written as few frames as they can be.

Every message is acknowledged on its own, only once its outcome is known — but the frames
that say so are coalesced: acks that complete in the same turn of the event loop, and form
a run from the oldest delivery still unacknowledged, go out as one `basic.ack` with
`multiple=true`. An ack that completes out of order (a later message finished first) is sent
on its own at once, so a slow message never holds the prefetch window of the others.

A `basic.ack` with `multiple=true` covers every unacknowledged delivery up to its tag, so
the run never crosses a delivery that is not done: one still being handled, or one being
rejected (a reject leaves the books before its frame is sent).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiormq.abc import AbstractChannel

__all__ = ["Acker"]


class Acker:
    """The acknowledgement books of one channel.

    Args:
        channel: the underlying aiormq channel the deliveries came on.
        on_error: called with the exception when a frame cannot be sent (the channel or
            the connection closed); the deliveries then go back to the queue.
    """

    def __init__(
        self, channel: AbstractChannel, on_error: Callable[[BaseException], None]
    ) -> None:
        self._channel = channel
        self._on_error = on_error
        self._open: OrderedDict[int, bool] = OrderedDict()
        """Delivery tag → done, in delivery order (tags grow on a channel)."""
        self._flusher: asyncio.Task[None] | None = None
        self.frames = 0
        """`basic.ack` frames sent (for measurements)."""

    @property
    def pending(self) -> int:
        """Deliveries not yet acknowledged or rejected."""
        return len(self._open)

    def track(self, tag: int) -> None:
        """Note a delivery as it arrives (before anything else can settle it)."""
        self._open[tag] = False

    def ack(self, tag: int) -> None:
        """Acknowledge `tag`; the frame goes out at the end of this turn of the loop."""
        if tag in self._open:
            self._open[tag] = True
            if self._flusher is None:
                self._flusher = asyncio.ensure_future(self._flush())

    async def reject(self, tag: int, *, requeue: bool) -> None:
        """Reject `tag` now (`basic.reject`)."""
        self._open.pop(tag, None)
        await self._channel.basic_reject(tag, requeue=requeue)

    async def flush(self) -> None:
        """Send every acknowledgement that is due, and wait until they are written."""
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)
        await self._send(wait=True)

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other acks of this turn arrive
            self._flusher = None
            await self._send(wait=False)
        except Exception as exc:
            self._on_error(exc)
        finally:
            self._flusher = None

    async def _send(self, *, wait: bool) -> None:
        top: int | None = None
        run = 0
        for tag, done in self._open.items():
            if not done:
                break
            top, run = tag, run + 1
        for _ in range(run):
            self._open.popitem(last=False)
        late = [tag for tag, done in self._open.items() if done]
        for tag in late:
            del self._open[tag]
        if top is not None:
            self.frames += 1
            await self._channel.basic_ack(top, multiple=run > 1, wait=wait)
        for tag in late:
            self.frames += 1
            await self._channel.basic_ack(tag, wait=wait)
