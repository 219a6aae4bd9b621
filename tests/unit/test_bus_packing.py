"""Commands packed by hiredis are byte for byte what redis-py's own asyncio packer sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import DataError

from agentevents import bus as busmod

COMMANDS = [
    ("EVALSHA", "a" * 40, 4, "ae:archive", *[b"k" * 30] * 3, 2000, 86400,
     *([b"ae:ev:t", "run-1", "e1", 2, b'{"a":1}', b"x" * 7000] * 20)),
    ("SCRIPT LOAD", "return 1"),
    (b"CLIENT SETNAME", b"gw"),
    ("SET", "k", 1.5), ("SET", "k", 0.1), ("SET", "k", 10**20), ("SET", "k", -3),
    ("SET", "k", "é"), ("SET", "k", memoryview(b"ab")), ("XREADGROUP", "GROUP", "g", "c", "BLOCK", 100),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_same_bytes_as_redis_py(command):
    assert b"".join(busmod.pack_command(command)) == b"".join(Connection().pack_command(*command))


@pytest.mark.parametrize("bad", [None, True])
def test_what_redis_py_refuses_is_refused_as_a_data_error(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        busmod.pack_command(("SET", "k", bad))


def test_a_clients_connections_pack_with_hiredis_whatever_their_kind():
    for url, kind in (("redis://127.0.0.1:1/0", Connection), ("rediss://127.0.0.1:1/0", SSLConnection)):
        pool = busmod.connect(url).connection_pool
        assert issubclass(pool.connection_class, kind) and pool.connection_class is not kind
        assert pool.make_connection().pack_command("PING") == [b"*1\r\n$4\r\nPING\r\n"]
