"""Django Channels with channels_redis, served by uvicorn.

``--layer core``: ``RedisChannelLayer`` (groups in sorted sets, messages in per-channel lists),
with a channel capacity of 2000 messages (the outbound queue of our gateway; the default is 100).
``--layer pubsub``: ``RedisPubSubChannelLayer`` (groups on Redis pub/sub).

A client connects to ``/ws/<stream>``; the consumer adds itself to the group ``g<stream>`` before
it accepts, so an open connection is in its group. A publisher ``group_send``s
``{"type": "bench.event", "text": ...}`` through the same layer (``configure`` below).
"""

from __future__ import annotations

import argparse

LAYERS = {"core": "channels_redis.core.RedisChannelLayer", "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer"}


def configure(layer: str, redis_url: str) -> None:
    import django
    from django.conf import settings

    config: dict = {"hosts": [redis_url]}
    if layer == "core":
        config.update(capacity=2000, expiry=60)
    settings.configure(
        DEBUG=False, SECRET_KEY="side-by-side-benchmark", ALLOWED_HOSTS=["*"], INSTALLED_APPS=["channels"],
        USE_TZ=True, LOGGING_CONFIG=None,
        CHANNEL_LAYERS={"default": {"BACKEND": LAYERS[layer], "CONFIG": config}})
    django.setup()


def group(stream: str) -> str:
    return "g" + stream


def application():
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    class StreamConsumer(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.group = group(self.scope["url_route"]["kwargs"]["stream"])
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def bench_event(self, event: dict) -> None:
            await self.send(text_data=event["text"])

    return ProtocolTypeRouter({"websocket": URLRouter([path("ws/<str:stream>", StreamConsumer.as_asgi())])})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--layer", choices=sorted(LAYERS), required=True)
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn's WebSocket implementation")
    args = parser.parse_args()
    configure(args.layer, args.redis_url)
    import uvicorn
    uvicorn.run(application(), host=args.host, port=args.port, ws=args.ws, loop="uvloop", lifespan="off",
                log_level="warning", access_log=False, backlog=4096, ws_max_size=2**20)
