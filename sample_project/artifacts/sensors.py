"""Cold-store temperatures from warehouse sensors over MQTT: warehouse/<room>/temperature."""

from __future__ import annotations

import iwb_mqtt as mqtt
from workbench.config import configurable

from project.types.events import Reading

MAX_CELSIUS = configurable("max_celsius", float, default=8.0)

temperatures = mqtt.Listener(
    connection="mqtt", topics=["warehouse/+/temperature"], qos=1,
    client_id="iwb-sample-sensors", clean_session=False,
    enabled=configurable("enabled", bool, default=True),
)


@temperatures.on_message
async def check(reading: Reading, message: mqtt.Message) -> dict:
    room = message.topic.split("/")[1]
    return {"room": room, "celsius": reading.celsius, "alarm": reading.celsius > MAX_CELSIUS}
