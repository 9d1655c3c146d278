"""make_backends: the one place that picks every store and the bus from the settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from presence_server.backends import make_backends
from presence_server.calls.store_memory import MemoryCallStore
from presence_server.calls.store_redis import RedisCallStore
from presence_server.cluster.bus_redis import RedisBus
from presence_server.config import ConfigError
from presence_server.directory.store_memory import MemoryDirectoryStore
from presence_server.directory.store_redis import RedisDirectoryStore
from presence_server.knocks.store_memory import MemoryKnockStore
from presence_server.knocks.store_redis import RedisKnockStore
from presence_server.presence.store_memory import MemoryPresenceStore
from presence_server.presence.store_redis import RedisPresenceStore
from rooms.redis_link import RedisLink
from rooms.store_memory import MemoryCampusStore
from rooms.store_redis import RedisCampusStore
from rooms.store_sqlite import SqliteCampusStore
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def test_a_single_node_keeps_everything_in_this_process() -> None:
    settings = make_settings({"PRESENCE_KNOCK__TIMEOUT_SECONDS": "7", "PRESENCE_CALLS__MAX_MESH": "5"})
    b = make_backends(settings)
    assert isinstance(b.campus, MemoryCampusStore)
    assert isinstance(b.presence, MemoryPresenceStore)
    assert isinstance(b.knocks, MemoryKnockStore) and b.knocks.timeout == 7
    assert b.knocks.cooldown == settings.knock.cooldown_seconds
    assert isinstance(b.calls, MemoryCallStore) and b.calls.max_mesh == 5
    assert b.calls.ring_timeout == settings.calls.ring_timeout_seconds
    assert isinstance(b.directory, MemoryDirectoryStore)
    assert (b.cluster, b.link, b.storage) == (None, None, "memory")


def test_the_campus_goes_to_sqlite_where_the_settings_say(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    b = make_backends(make_settings({"PRESENCE_STORAGE__BACKEND": "sqlite", "PRESENCE_STORAGE__SQLITE_PATH": str(path)}))
    assert isinstance(b.campus, SqliteCampusStore) and b.campus.path == path
    assert b.storage == "sqlite" and b.cluster is None


def test_an_unknown_storage_backend_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="storage.backend"):
        make_settings({"PRESENCE_STORAGE__BACKEND": "etcd"})


def test_a_redis_url_puts_every_store_and_the_bus_on_one_link() -> None:
    url = "redis://127.0.0.1:6390/2"
    b = make_backends(make_settings({"PRESENCE_REDIS__URL": url, "PRESENCE_REDIS__PREFIX": "x:"}))
    assert isinstance(b.campus, RedisCampusStore)
    assert isinstance(b.presence, RedisPresenceStore)
    assert isinstance(b.knocks, RedisKnockStore)
    assert isinstance(b.calls, RedisCallStore)
    assert isinstance(b.directory, RedisDirectoryStore)
    assert b.cluster is not None and isinstance(b.cluster.bus, RedisBus)
    assert b.cluster.presence is b.presence and b.cluster.node_id == b.presence.node_id == b.cluster.bus.node_id
    assert isinstance(b.link, RedisLink) and b.link.url == url
    stores = (b.campus, b.presence, b.knocks, b.calls, b.directory)
    assert {(s.url, s.prefix) for s in stores} == {(url, "x:")}
    # One link for the whole node: the stores, the bus and membership share it.
    assert {id(s._link) for s in stores} | {id(b.cluster.bus._link), id(b.cluster.membership._link)} == {id(b.link)}
    assert b.storage == "redis"


def test_the_redis_prefix_defaults_to_vo() -> None:
    b = make_backends(make_settings({"PRESENCE_REDIS__URL": "redis://h/0"}))
    assert b.campus.prefix == "vo:"  # type: ignore[attr-defined]


def test_a_single_node_never_loads_redis_for_its_stores() -> None:
    # The Redis modules are imported only when a node is a cluster member. (The
    # whole server loads redis-py anyway: python-socketio imports it.)
    code = (
        "import sys; from presence_server.backends import make_backends; "
        "from presence_server.config import load_settings; "
        "s = lambda env: load_settings('config/default.toml', env=env); "
        "make_backends(s({'PRESENCE_STORAGE__BACKEND': 'memory'})); "
        "make_backends(s({'PRESENCE_STORAGE__BACKEND': 'sqlite', 'PRESENCE_STORAGE__SQLITE_PATH': 'x'})); "
        "assert 'redis' not in sys.modules, 'redis imported'; "
        "make_backends(s({'PRESENCE_REDIS__URL': 'redis://127.0.0.1:1/0'})); "
        "assert 'redis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


async def test_a_cluster_node_opens_one_pool_and_closes_it(redis_server: RedisServer, redis_prefix: str) -> None:
    b = make_backends(make_settings({"PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": redis_prefix}))
    assert b.link is not None
    await b.open()
    try:
        pool = b.link.client.connection_pool
        assert await b.campus.load() is not None and await b.calls.stats() == (0, 0)
        assert await b.presence.snapshot("f") == (0, []) and await b.directory.sweep(now=0) == 0
        # Every store answers through the one client (and so the one pool).
        assert {id(s._redis().connection_pool) for s in (b.campus, b.presence, b.knocks, b.calls, b.directory)} == {  # type: ignore[attr-defined]
            id(pool)
        }
    finally:
        await b.close()
    assert not b.link.is_open
    await b.close()  # idempotent
