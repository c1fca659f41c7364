"""The real services the suite runs against: PostgreSQL, Redis (across processes), S3 (SeaweedFS), Chromium.

Outside CI the PostgreSQL and Redis checks skip when those are not configured; with
APSARA_REQUIRE_REAL_SERVICES=1 (``.ci/run``) they fail instead. SeaweedFS and Chromium need nothing from
outside, so their tests always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.services import S3_BUCKET, SeaweedS3, http_get, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_database_is_postgresql_when_configured() -> None:
    """With DATABASE_URL set to PostgreSQL the suite really runs on it (CI requires it)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        skip_or_fail("DATABASE_URL does not point at PostgreSQL")
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert "PostgreSQL" in cursor.fetchone()[0]


def _redis_url() -> str:
    url = getattr(settings, "REDIS_URL", "") or os.environ.get("REDIS_URL", "")
    if not url:
        skip_or_fail("REDIS_URL is not set")
    return url


def test_redis_is_the_channel_layer_and_reachable() -> None:
    """With REDIS_URL set the channel layer is channels-redis and Redis answers."""
    url = _redis_url()
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        assert client.ping()
    finally:
        client.close()


_SENDER = """
import asyncio, json, os, sys
import django
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    await layer.group_send(sys.argv[1], {"type": "message.saved", "text": sys.argv[2], "pid": os.getpid()})
    await layer.close_pools() if hasattr(layer, "close_pools") else None

asyncio.run(main())
"""


async def test_channel_layer_group_message_crosses_processes() -> None:
    """A group message sent by another OS process on the Redis layer reaches a channel in this one."""
    _redis_url()
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    try:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apsara.settings.test"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SENDER, group, "hello from afar", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()
        message = await asyncio.wait_for(layer.receive(channel), timeout=10)
    finally:
        await layer.group_discard(group, channel)
    assert message["type"] == "message.saved"
    assert message["text"] == "hello from afar"
    assert message["pid"] != os.getpid()
    json.dumps(message)  # only plain data crosses the layer


def test_s3_server_stores_and_serves_presigned(s3_server: SeaweedS3) -> None:
    """The SeaweedFS fixture is a working S3: objects go in, and a presigned GET serves them."""
    client = s3_server.client()
    client.put_object(Bucket=S3_BUCKET, Key="probe/hello.txt", Body=b"hello")
    url = client.generate_presigned_url("get_object", Params={"Bucket": S3_BUCKET, "Key": "probe/hello.txt"})
    assert http_get(url) == (200, b"hello")
    tampered = url.replace("probe/hello.txt", "probe/other.txt")
    assert http_get(tampered)[0] in (403, 404)


def test_chromium_is_installed() -> None:
    """Debian's Chromium, which the browser tests drive, is installed and runs."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/install-system-packages.sh (make test does)")
    result = subprocess.run([str(chromium), "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert "Chromium" in result.stdout


async def test_redis_layer_receive_waits_longer_than_its_blocking_pop() -> None:
    """A socket idle on the channel layer for longer than one BZPOPMIN round keeps waiting, then gets its message.

    redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis's 5 s blocking pop: without
    a longer timeout in CHANNEL_LAYERS every idle consumer died with "Timeout reading from …".
    """
    _redis_url()
    from channels.layers import channel_layers

    layer = channel_layers.make_backend("default")
    channel = await layer.new_channel()
    wait = layer.brpop_timeout + 1.5

    async def send_later() -> None:
        await asyncio.sleep(wait)
        await layer.send(channel, {"type": "test.late"})

    sender = asyncio.create_task(send_later())
    try:
        message = await asyncio.wait_for(layer.receive(channel), timeout=wait + 10)
    finally:
        await sender
    assert message == {"type": "test.late"}
