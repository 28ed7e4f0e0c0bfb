"""Kafka consumers for iwb: the `kafka` trigger kind and the `kafka` connection kind.

    import iwb_kafka as kafka

    orders = kafka.Listener(connection="main", topics=["orders"], group_id="billing",
                            offset_reset="earliest", dead_letter_topic="orders.dlq",
                            retries=3)

    @orders.on_record
    async def bill(order: Order, record: kafka.Record) -> None: ...

    # or one event per batch of consecutive records of a partition:
    # @orders.on_batch
    # async def bill_many(orders: list[Order], records: list[kafka.Record]) -> None: ...

connections.toml:

    [main]
    kind = "kafka"
    bootstrap_servers = "127.0.0.1:19092"
    dev_broker = true          # start a development broker (tansu) there; see devbroker

What a listener guarantees (details in `iwb_kafka.consumer`): records of a partition are
handled in order, partitions at once; offsets are committed only after the outcome is known
(at least once); a record whose outcome is an error — its retries (the artifact's
`retries=` policy) exhausted, or a payload that does not parse or validate — is produced to
the dead-letter topic with the error in headers (`iwb_kafka.deadletter`) and the partition
moves on; rebalances finish running work and commit before giving partitions up; a lost
cluster marks the listener `disconnected-retrying` until it is back.

Events: `iwb.kafka.record` (one per record) and `iwb.kafka.batch` (one per batch); their
shape is described in `iwb_kafka.events`, their transport fields in `iwb_kafka.transport`.
Handlers can ask for `kafka.Record`, `kafka.Batch` or `list[kafka.Record]`.

Replay through the transport: `iwb replay --via transport` / `inject` produce the event's
record to its topic (and partition) with its key and headers. `iwb replay PATH -a NAME
--reread [topic/]partition@offset --count N` reads a stretch of a partition again (its own
consumer, no group, nothing committed) and hands it to the current handler, diffing each
outcome against the record's latest capture.

Throughput (`scripts/bench-kafka`: 100,000 JSON records of 200 bytes, 3 partitions, tansu
on the same two-core machine, a no-op handler; one run):

| consumer                                      | records/s | vs raw loop |
| --------------------------------------------- | --------- | ----------- |
| raw aiokafka `async for msg in consumer`      |   130,700 |        1.00 |
| raw aiokafka `getmany()` batches              |   308,800 |        2.36 |
| `@on_record`, capture on                      |    23,800 |        0.18 |
| `@on_record`, capture off                     |    51,700 |        0.40 |
| `@on_batch` (up to 500 per event), capture on |   150,900 |        1.16 |

Per record, `@on_record` spends about 3.5 µs building the event, 2 µs in the lanes, 7.5 µs
in the runtime's dispatch (binding, deadline, outcome, metrics) and about 20 µs in the
capture store's writer thread (redaction, JSON, one SQLite row with its indexes), which
shares the GIL with the event loop: one captured row per record caps a per-record
listener far below what aiokafka can fetch. For high-rate topics use `@on_batch`: one
event, one outcome and one capture row per batch.

Modules: `listener` (authoring), `record` (`Record`, `Batch`), `events` (records ↔ events),
`transport` (schema, codec), `consumer` (the consume loop; imports aiokafka), `deadletter`,
`connection` (`KafkaConnection`, `KafkaClient.publish`), `devbroker`, `samples`, `trigger`.

This package imports aiokafka only when a listener starts, a connection opens a client or
a record is produced; it never imports the runtime or the TUI.
"""

from __future__ import annotations

from iwb_kafka.connection import KafkaClient, KafkaConnection, KafkaConnectionConfig, Published
from iwb_kafka.errors import (
    DevBrokerError,
    KafkaConnectionLostError,
    KafkaError,
    KafkaPublishError,
)
from iwb_kafka.events import BATCH_TYPE, INJECT_HEADER, RECORD_TYPE
from iwb_kafka.listener import Listener, ListenerConfig
from iwb_kafka.record import Batch, Record
from iwb_kafka.transport import KafkaBatchEntry, KafkaTransport
from iwb_kafka.trigger import KafkaTrigger

__all__ = [
    "BATCH_TYPE",
    "INJECT_HEADER",
    "RECORD_TYPE",
    "Batch",
    "DevBrokerError",
    "KafkaBatchEntry",
    "KafkaClient",
    "KafkaConnection",
    "KafkaConnectionConfig",
    "KafkaConnectionLostError",
    "KafkaError",
    "KafkaPublishError",
    "KafkaTransport",
    "KafkaTrigger",
    "Listener",
    "ListenerConfig",
    "Published",
    "Record",
]
