"""The house plan (docs/architecture.md) holds: who may import what, where Redis is
spoken, where a backend is picked. Read from the source with ``ast``, nothing run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("presence", "knocks", "calls", "directory", "audit", "tenants", "invitations")
SDK = {"signalling/client.py", "signalling/webrtc.py", "signalling/floorview.py"}  # the Python client, not the server


def modules(*packages: str) -> dict[str, set[str]]:
    """Source path -> every module it imports (absolute, as written)."""
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            imported: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
            found[str(path.relative_to(ROOT))] = imported
    return found


def importing(prefix: str, table: dict[str, set[str]]) -> set[str]:
    return {path for path, imported in table.items() if any(m == prefix or m.startswith(prefix + ".") for m in imported)}


def test_the_domain_imports_neither_the_server_nor_the_call_rules() -> None:
    table = modules("rooms")
    assert importing("presence_server", table) == set() and importing("signalling", table) == set()


def test_the_call_rules_and_the_sdk_import_nothing_of_the_server() -> None:
    assert importing("presence_server", modules("signalling")) == set()


def test_only_the_redis_modules_import_redis() -> None:
    table = modules("presence_server", "rooms", "signalling")
    allowed = {
        "rooms/redis_link.py",  # the one connection policy and error translation
        "presence_server/cluster/bus_redis.py",  # pub/sub
        *(f"presence_server/{family}/store_redis.py" for family in FAMILIES),
    }
    assert importing("redis", table) <= allowed, importing("redis", table) - allowed


def test_nothing_above_the_stores_touches_the_redis_link_but_the_factory_and_cluster_plumbing() -> None:
    table = modules("presence_server")
    users = importing("rooms.redis_link", table)
    stores = {f"presence_server/{family}/store_redis.py" for family in FAMILIES}
    assert users - stores == {"presence_server/backends.py", "presence_server/cluster/bus_redis.py",
                              "presence_server/cluster/membership.py"}


def test_only_make_backends_picks_a_store_implementation() -> None:
    table = modules("presence_server", "rooms")
    implementations = [f"presence_server.{family}.store_{kind}" for family in FAMILIES for kind in ("memory", "redis")]
    implementations += [
        "presence_server.tenants.store_sqlite", "presence_server.audit.store_sqlite",
        "presence_server.invitations.store_sqlite",
    ]  # fmt: skip
    implementations += ["rooms.store_memory", "rooms.store_sqlite", "rooms.store_redis", "presence_server.cluster.bus_redis"]
    pickers = set().union(*(importing(module, table) for module in implementations))
    assert pickers == {"presence_server/backends.py"}


def test_floor_diffs_live_in_a_leaf_module() -> None:
    imported = modules("presence_server")["presence_server/diffs.py"]
    assert not {m for m in imported if m.split(".")[0] in ("presence_server", "rooms", "signalling")}


def test_each_store_family_keeps_interface_and_implementations_in_one_folder() -> None:
    for family in FAMILIES:
        folder = ROOT / "presence_server" / family
        assert {"store.py", "store_memory.py", "store_redis.py", "service.py"} <= {p.name for p in folder.glob("*.py")}
    assert {p.name for p in (ROOT / "presence_server" / "cluster").glob("*.py")} == {
        "__init__.py", "bus.py", "bus_redis.py", "membership.py", "node.py", "ordering.py", "transport.py"
    }
    assert {p.name for p in (ROOT / "signalling").glob("*.py")} - {Path(p).name for p in SDK} >= {"calls.py", "turn.py"}
    assert not (ROOT / "signalling" / "call_store.py").exists()
