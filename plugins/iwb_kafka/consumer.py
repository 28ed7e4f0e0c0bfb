"""The consume loop of one Kafka listener.

    a feeder per partition: getmany(tp) ─► one event per record (or per batch)
        ─► Lanes, one lane per (topic, partition) ─► dispatch (the runtime)
        ─► settle, in order per partition: ack → done; reject → dead letter → done
    the commit loop: done offsets ─► commit (every commit_interval_ms, on rebalance, on stop)

Guarantees and how they are kept:

- **Order per partition, partitions at once**: one lane per (topic, partition) of
  `workbench.lanes.Lanes`; `max_inflight` events at most are fetched and not yet settled,
  split evenly between the assigned partitions (two batches each in batch mode). Each
  assigned partition has a feeder task that fetches only its own records and tops up its
  own share, so a partition with a long backlog does not hold up the others.
- **At least once**: auto-commit is off. A settled record moves its partition's *done*
  offset (the next offset to read) — only in order, since a lane settles in order. The
  commit loop commits done offsets every `commit_interval_ms`, and on rebalance and
  shutdown. A record is never committed before its outcome is known, and a record whose
  dead-lettering failed halts its partition's done offset until the listener restarts.
- **Errors**: an outcome with disposition `reject` (retries exhausted, payload that does not
  bind) is produced to the dead-letter topic before the record counts as done; without a
  dead-letter topic it is logged and committed. The partition keeps moving either way.
- **Rebalance**: when partitions are revoked the listener shows `rebalancing`, skips events
  of those partitions that have not started, waits (up to the session timeout) for the ones
  being handled, commits, and shows `listening` again once the new assignment arrives.
  Events fetched before a revoke never move an offset afterwards (an epoch counter); the
  new owner (perhaps this listener again) starts from the committed offsets.
- **Graceful stop** (`drain`): fetching stops, events not started are skipped, the ones
  being handled finish (up to `drain_timeout_ms`), done offsets are committed.
- **Connection loss**: aiokafka reconnects on its own and says nothing, so the loop probes
  the cluster every `probe_interval_ms`; two failed probes in a row raise
  `KafkaConnectionLostError` out of `serve()`, and the runtime shows `disconnected-retrying`
  and restarts the listener with backoff.

This module imports aiokafka; the trigger imports it only when a listener starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.errors import KafkaError as ClientError

from iwb_kafka.connection import KafkaClient
from iwb_kafka.deadletter import dead_letter_records
from iwb_kafka.errors import KafkaConnectionLostError, KafkaError, describe
from iwb_kafka.events import EventFactory
from workbench.events import Event, Outcome
from workbench.lanes import Lanes
from workbench.plugin import Dispatch

__all__ = ["ConsumeLoop", "LoopSettings", "RebalanceListener"]

log = logging.getLogger("iwb.kafka")

FETCH_WAIT_MS = 200
"""How long one `getmany` waits for records (and how soon a drain is noticed)."""
BATCHES_PER_PARTITION = 2
"""Batch events in flight per partition (one being handled, one waiting)."""

SKIPPED = Outcome(event_id="", status="rejected", disposition="retry")
"""The outcome of an event skipped because its partition is revoked or the loop drains."""


@dataclass(slots=True)
class Token:
    """What the lanes carry with an event, for its settle step."""

    tp: TopicPartition
    epoch: int
    """The assignment epoch the event was fetched in."""
    next_offset: int
    """The offset to commit once the event is settled."""
    records: Any
    """The ConsumerRecord (record mode) or the list of them (batch mode)."""


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """The knobs of a consume loop (from the listener's configuration)."""

    batch: bool
    max_batch: int
    max_inflight: int
    commit_interval: float
    probe_interval: float
    drain_timeout: float
    revoke_timeout: float
    """Longest wait for in-flight events of revoked partitions (the session timeout)."""
    dead_letter_topic: str | None


class ConsumeLoop:
    """Fetches, dispatches in ordered lanes, settles, commits. See the module docstring.

    Args:
        consumer: a subscribed, not yet started consumer (auto-commit off).
        name: the artifact name (for logs).
        bootstrap: the cluster, for messages.
        dispatch: the runtime's dispatch of the artifact.
        factory: turns records into events.
        settings: the loop's knobs.
        client: the connection's client, for dead letters.
        ready: the runtime's `ready()`; called when an assignment arrives.
        set_status: the runtime's status setter (for `rebalancing`).
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        name: str,
        bootstrap: str,
        dispatch: Dispatch,
        factory: EventFactory,
        settings: LoopSettings,
        client: KafkaClient | None,
        ready: Callable[[], None],
        set_status: Callable[[str], None],
    ) -> None:
        self.consumer = consumer
        self.name = name
        self.bootstrap = bootstrap
        self.factory = factory
        self.settings = settings
        self.client = client
        self._ready = ready
        self._set_status = set_status
        self.lanes = Lanes(
            _Gate(self, dispatch), settle=self._settle, max_inflight=settings.max_inflight
        )
        self.assigned: set[TopicPartition] = set()
        self.revoking: set[TopicPartition] = set()
        self.halted: set[TopicPartition] = set()
        """Partitions whose dead-lettering failed: their done offset stays put."""
        self.done: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last settled record (what to commit)."""
        self.committed: dict[TopicPartition, int] = {}
        self.pending: dict[TopicPartition, int] = {}
        """Per partition, events submitted to the lanes and not yet settled."""
        self.epoch = 0
        self.draining = False
        self.listening = False
        self.commits = 0
        """Successful commits (for tests and metrics)."""
        self._quiet = asyncio.Event()
        """Set when a partition's last pending event settles (revokes wait for it)."""
        self._room: dict[TopicPartition, asyncio.Event] = {}
        """Per partition, set on every settle (its feeder waits for it when it is full)."""
        self._feeders: dict[TopicPartition, asyncio.Task[None]] = {}
        """Per assigned partition, the task that fetches and submits its records."""
        self._commit_lock = asyncio.Lock()
        self._running = False
        self._failure: asyncio.Future[BaseException] = (
            asyncio.get_running_loop().create_future()
        )

    # ------------------------------------------------------------------ running

    def fail(self, exc: BaseException) -> None:
        """Stop the loop with `exc` (raised out of `run`)."""
        if not self._failure.done():
            self._failure.set_result(exc)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())  # type: ignore[arg-type]

    async def run(self) -> None:
        """Consume until cancelled; raises what stopped the loop (a lost connection, a
        dead letter that could not be produced, a consumer error)."""
        tasks = [
            asyncio.create_task(self._commit_loop(), name=f"iwb-kafka-commit-{self.name}"),
            asyncio.create_task(self._probe(), name=f"iwb-kafka-probe-{self.name}"),
        ]
        for task in tasks:
            task.add_done_callback(self._task_done)
        self._running = True
        self._start_feeders()  # the first assignment came before the loop ran
        try:
            raise await self._failure
        finally:
            tasks.extend(self._feeders.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _share(self) -> int:
        """Events one partition may have in flight: `max_inflight` split evenly between the
        assigned partitions (batch mode: two batches), so a partition with a long backlog
        cannot take every slot while the others wait."""
        if self.settings.batch:
            return BATCHES_PER_PARTITION
        return max(1, self.settings.max_inflight // max(1, len(self.assigned)))

    def _start_feeders(self) -> None:
        for tp in self.assigned:
            task = self._feeders.get(tp)
            if task is None or task.done():
                task = asyncio.create_task(self._feed(tp), name=f"iwb-kafka-feed-{tp}")
                task.add_done_callback(self._task_done)
                self._feeders[tp] = task

    async def _feed(self, tp: TopicPartition) -> None:
        """Fetch the records of one partition and submit them, keeping its share in flight.

        One feeder per assigned partition: each waits only for its own records and its own
        room, so partitions neither wait for nor starve each other. It ends when the
        partition is no longer assigned (a feeder blocked in a fetch through a rebalance
        carries on if the partition comes back) or the loop drains."""
        consumer = self.consumer
        factory = self.factory
        submit = self._submit
        batch = self.settings.batch
        size = self.settings.max_batch
        room = self._room.setdefault(tp, asyncio.Event())
        while not self.draining and tp in self.assigned:
            share = self._share()
            pending = self.pending.get(tp, 0)
            if pending >= share:
                room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(room.wait(), FETCH_WAIT_MS / 1000)
                continue
            fetched = await consumer.getmany(
                tp, timeout_ms=FETCH_WAIT_MS, max_records=size if batch else share - pending
            )
            records = fetched.get(tp)
            if not records or self.draining:
                continue  # draining: not started, not committed, fetched again next time
            if batch:
                for start in range(0, len(records), size):
                    chunk = records[start : start + size]
                    await submit(tp, chunk[-1].offset + 1, chunk, factory.batch(chunk))
            else:
                for record in records:
                    await submit(tp, record.offset + 1, record, factory.record(record))

    async def _submit(self, tp: TopicPartition, next_offset: int, records: Any, event: Event
                      ) -> None:
        self.pending[tp] = self.pending.get(tp, 0) + 1
        try:
            await self.lanes.submit(tp, event, Token(tp, self.epoch, next_offset, records))
        except BaseException:
            self._settled(tp)
            raise

    def _settled(self, tp: TopicPartition) -> None:
        left = self.pending[tp] - 1
        self.pending[tp] = left
        room = self._room.get(tp)
        if room is not None:
            room.set()
        if left == 0:
            self._quiet.set()

    async def _settle(self, event: Event, outcome: Outcome, token: Token) -> None:
        tp = token.tp
        try:
            if outcome is SKIPPED or tp in self.halted:
                return
            if outcome.disposition != "ack" and not await self._dead_letter(
                event, outcome, token
            ):
                self.halted.add(tp)
                return
            if token.epoch == self.epoch:
                self.done[tp] = token.next_offset
        finally:
            self._settled(tp)

    async def _dead_letter(self, event: Event, outcome: Outcome, token: Token) -> bool:
        records: Sequence[Any] = (
            token.records if isinstance(token.records, list) else [token.records]
        )
        first = records[0]
        where = f"{first.topic}/{first.partition}@{first.offset}"
        if len(records) > 1:
            where += f"-{records[-1].offset}"
        problem = (
            f"{outcome.error.type}: {outcome.error.message}" if outcome.error else outcome.status
        )
        topic = self.settings.dead_letter_topic
        if topic is None:
            log.warning(
                "%s: record %s failed (%s); no dead_letter_topic is set, so it is committed "
                "and dropped (event %s)", self.name, where, problem, event.id,
                extra={"fields": {"artifact": self.name, "event_id": event.id}},
            )
            return True
        letters = dead_letter_records(topic, event, outcome, records)
        # noted before sending: the capture writer may serialise the outcome at any await
        outcome.record_sent(
            "kafka.dead_letter", topic=topic, records=len(letters), source=where,
        )
        try:
            if self.client is None:
                raise KafkaError(
                    f"the connection of listener {self.name!r} is not open, so record {where} "
                    f"cannot be dead-lettered to {topic!r}"
                )
            await self.client.send_many(letters)
        except KafkaError as exc:
            self.fail(exc)
            return False
        return True

    # ------------------------------------------------------------------ commits

    async def commit(self) -> bool:
        """Commit the done offsets that moved; False when the commit did not go through
        (the records after the last commit are then handled again by whoever consumes
        the partition next)."""
        async with self._commit_lock:
            offsets = {
                tp: offset for tp, offset in self.done.items()
                if tp in self.assigned and self.committed.get(tp) != offset
            }
            if not offsets:
                return True
            try:
                async with asyncio.timeout(max(self.settings.revoke_timeout, 1.0)):
                    await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning(
                    "%s: committing %s failed (%s); the group is rebalancing and the records "
                    "after the last commit will be handled again",
                    self.name, _describe(offsets), exc,
                )
                return False
            except (ClientError, TimeoutError) as exc:
                log.warning(
                    "%s: committing %s failed: %s", self.name, _describe(offsets), describe(exc)
                )
                return False
            self.committed.update(offsets)
            self.commits += 1
            return True

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval)
            await self.commit()

    # ------------------------------------------------------------------ liveness

    async def _probe(self) -> None:
        interval = self.settings.probe_interval
        failures = 0
        while True:
            await asyncio.sleep(interval)
            try:
                # a broker that is down refuses at once; the timeout is for one that hangs,
                # and generous, so a busy event loop is not taken for a lost cluster
                async with asyncio.timeout(max(interval, 5.0)):
                    await self.consumer.topics()
            except (ClientError, OSError, TimeoutError) as exc:
                failures += 1
                if failures >= 2:
                    raise KafkaConnectionLostError(
                        f"Listener {self.name!r} lost the Kafka cluster at {self.bootstrap}: "
                        f"{describe(exc)}. The records after the last commit will be handled "
                        "again once it is back.",
                    ) from exc
            else:
                failures = 0

    # ------------------------------------------------------------------ rebalance, drain

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish what was started on `revoked`, commit, forget them."""
        if self.listening:
            self._set_status("rebalancing")
        if not revoked:
            return
        self.revoking = set(revoked)
        if not await self._wait_quiet(revoked, self.settings.revoke_timeout):
            log.warning(
                "%s: events of revoked partitions %s are still running after %g s; their "
                "records will be handled again by the next owner",
                self.name, _describe(revoked), self.settings.revoke_timeout,
            )
        await self.commit()
        self.epoch += 1
        for tp in revoked:
            self.done.pop(tp, None)
            self.committed.pop(tp, None)
        self.assigned -= revoked
        self.revoking = set()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the new assignment, settle where each partition starts, report `listening`.

        The start positions are looked up before `listening` is reported, so with
        `offset_reset="latest"` every record produced after that point is consumed (aiokafka
        would otherwise resolve "latest" lazily, at the first fetch)."""
        self.assigned = set(assigned)
        for tp in assigned:
            self.halted.discard(tp)
        try:
            async with asyncio.timeout(self.settings.revoke_timeout):
                for tp in sorted(assigned):
                    await self.consumer.position(tp)
        except (ClientError, TimeoutError) as exc:
            log.warning(
                "%s: the start positions of %s are not known yet (%s); reporting listening "
                "anyway", self.name, _describe(assigned), describe(exc),
            )
        self.listening = True
        if self._running:
            self._start_feeders()
        self._ready()

    async def _wait_quiet(self, tps: set[TopicPartition], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(self.pending.get(tp, 0) for tp in tps):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._quiet.clear()
            try:
                await asyncio.wait_for(self._quiet.wait(), remaining)
            except TimeoutError:
                pass
        return True

    async def drain(self) -> None:
        """Stop fetching, let running events finish (skipping the rest), commit."""
        self.draining = True
        if not await self.lanes.drain(self.settings.drain_timeout):
            log.warning(
                "%s: %d event(s) still running after %g s of draining; their records will be "
                "handled again", self.name, self.lanes.pending, self.settings.drain_timeout,
            )
        await self.commit()

    async def close(self, wait: float = 2.0) -> None:
        """Release the lanes (after `wait` s for running events) and commit what is done."""
        self.draining = True
        await self.lanes.drain(wait)
        await self.lanes.close()
        await self.commit()


class _Gate:
    """The dispatch the lanes call: skips events of revoked partitions and, while
    draining, every event that has not started; hands the rest to the runtime."""

    __slots__ = ("dispatch", "loop")

    def __init__(self, loop: ConsumeLoop, dispatch: Dispatch) -> None:
        self.loop = loop
        self.dispatch = dispatch

    async def __call__(self, event: Event) -> Outcome:
        loop = self.loop
        if loop.draining or (
            loop.revoking
            and (event.transport["topic"], event.transport["partition"]) in loop.revoking
        ):
            return SKIPPED
        return await self.dispatch(event)

    def reject(
        self, event: Event, error_type: str, message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        return self.dispatch.reject(event, error_type, message, details)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands aiokafka's rebalance callbacks to the loop."""

    def __init__(self, loop: ConsumeLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.loop.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.loop.on_assigned(set(assigned))


def _describe(tps: Any) -> str:
    items = tps.items() if isinstance(tps, dict) else ((tp, None) for tp in tps)
    parts = sorted(
        f"{tp.topic}/{tp.partition}" + ("" if offset is None else f"@{offset}")
        for tp, offset in items
    )
    return ", ".join(parts) or "(none)"
