"""The presence-server command: check-config, token, run; exit codes and messages."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import structlog

from presence_server.auth import TokenVerifier
from presence_server.cli import main
from presence_server.config import Settings, load_settings
from rooms.actors import Profile, Role

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOML = ROOT / "config" / "default.toml"
PRODUCTION_TOML = ROOT / "config" / "production.example.toml"
STRONG = "p" * 40

NON_DEV = f"""
dev_mode = false
[auth.municipalities.altbach]
algorithm = "HS256"
secret = "{STRONG}"
"""


@pytest.fixture(autouse=True)
def _no_presence_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PRESENCE_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "presence.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- check-config -----------------------------------------------------------------------


def test_check_config_accepts_the_default_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(DEFAULT_TOML)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {DEFAULT_TOML}\n")
    assert "altbach (HS256), bergheim (HS256), lindenau (HS256), seefeld (HS256)" in out
    assert "storage: sqlite" in out
    assert "dev_mode: true" in out


def test_check_config_accepts_the_production_example_with_secrets_from_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__SECRET", STRONG)
    monkeypatch.setenv("PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET", STRONG)
    assert main(["check-config", str(PRODUCTION_TOML)]) == 0
    out = capsys.readouterr().out
    assert "bergheim (RS256)" in out and "dev_mode: false" in out
    assert "metrics: 127.0.0.1:9180 (own listener), no token" in out and "warning" not in out
    monkeypatch.setenv("PRESENCE_METRICS__TOKEN", STRONG)
    assert main(["check-config", str(PRODUCTION_TOML)]) == 0
    assert "metrics: 127.0.0.1:9180 (own listener), bearer token required" in capsys.readouterr().out


def test_check_config_reports_the_bad_key_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[http]\nport = 70000\n[log]\ncolour = 'red'\n")
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "http.port: Input should be less than or equal to 65535 (got 70000)" in captured.err
    assert "log.colour: unknown key" in captured.err
    assert "Traceback" not in captured.err


def test_check_config_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_check_config_reads_key_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f'[auth.municipalities.seefeld]\nalgorithm = "RS256"\npublic_key_file = "{tmp_path}/no.pem"\n')
    assert main(["check-config", str(path)]) == 2
    assert "auth.municipalities.seefeld.public_key_file: cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(("config", "code"), [(DEFAULT_TOML, 0), (None, 2)])
def test_check_config_as_a_subprocess(tmp_path: Path, config: Path | None, code: int) -> None:
    path = config or write(tmp_path, '[storage]\nbackend = "postgres"\n')
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PRESENCE_")}
    result = subprocess.run(
        [sys.executable, "-m", "presence_server", "check-config", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code, result.stderr
    if code == 0:
        assert result.stdout.startswith(f"OK: {path}")
    else:
        assert "storage.backend: Input should be 'memory' or 'sqlite'" in result.stderr
        assert "Traceback" not in result.stderr


# --- token ------------------------------------------------------------------------------


def test_token_is_minted_in_dev_mode_and_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "token", "--config", str(DEFAULT_TOML),
        "--municipality", "lindenau", "--user", "l-42", "--name", "Lena Krüger",
        "--role", "staff", "--role", "admin",
        "--department", "Ordnungsamt", "--job-title", "Leitung",
        "--skill", "Gewerberecht", "--skill", "Französisch",
    ]  # fmt: skip
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()

    settings = load_settings(DEFAULT_TOML, env={})
    identity = TokenVerifier(settings.auth).verify_local(token)
    assert identity.actor.user_id == "l-42"
    assert identity.actor.municipality_id == "lindenau"
    assert identity.actor.display_name == "Lena Krüger"
    assert identity.actor.roles == frozenset({Role.STAFF, Role.ADMIN})
    assert identity.actor.profile == Profile("Ordnungsamt", "Leitung", ("Gewerberecht", "Französisch"))
    # Default lifetime: auth.dev_token_ttl_seconds.
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == settings.auth.dev_token_ttl_seconds


def test_token_uses_default_toml_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["token", "--municipality", "seefeld", "--user", "s", "--name", "S", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    identity = TokenVerifier(load_settings(DEFAULT_TOML, env={}).auth).verify_local(token)
    assert identity.actor.roles == frozenset({Role.STAFF})


def test_token_is_refused_outside_dev_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, NON_DEV)
    assert main(["token", "--config", str(path), "--municipality", "altbach", "--user", "u", "--name", "U"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dev_mode is false" in captured.err


def test_token_for_an_unknown_municipality_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "--config", str(DEFAULT_TOML), "--municipality", "atlantis", "--user", "u", "--name", "U"]
    assert main(argv) == 2
    assert "unknown municipality 'atlantis'" in capsys.readouterr().err


def test_token_with_an_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "--config", str(DEFAULT_TOML), "--municipality", "altbach", "--user", "u", "--name", "U"]
    assert main([*argv, "--role", "mayor"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# --- run and the rest ---------------------------------------------------------------------


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Settings]]:
    """Stands in for presence_server.app so `run` returns instead of serving.

    `run` configures logging globally; the fixture puts it back for later tests.
    """
    started: list[Settings] = []
    module = types.ModuleType("presence_server.app")
    module.run_server = started.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "presence_server.app", module)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield started
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_run_passes_cli_overrides_on_top_of_the_file(tmp_path: Path, fake_app: list[Settings]) -> None:
    path = write(tmp_path, '[http]\nhost = "0.0.0.0"\nport = 7000\n[log]\nformat = "json"\n')
    assert main(["run", "--config", str(path), "--port", "9001"]) == 0
    (settings,) = fake_app
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9001)
    assert main(["run", "--config", str(path), "--host", "127.0.0.2"]) == 0
    assert (fake_app[1].http.host, fake_app[1].http.port) == ("127.0.0.2", 7000)


def test_run_finds_its_config_through_presence_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_app: list[Settings]
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/default.toml here
    monkeypatch.setenv("PRESENCE_CONFIG", str(write(tmp_path, '[storage]\nbackend = "memory"\n')))
    assert main(["run"]) == 0
    assert fake_app[0].storage.backend == "memory"


def test_run_without_any_file_uses_built_in_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_app: list[Settings]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 0
    assert fake_app[0] == Settings.model_validate({})


def test_run_with_a_bad_override_exits_2_without_starting(
    fake_app: list[Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(DEFAULT_TOML), "--port", "70000"]) == 2
    assert "http.port" in capsys.readouterr().err
    assert fake_app == []


def test_no_arguments_print_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: presence-server" in out
    for command in ("run", "check-config", "token"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "invalid choice" in capsys.readouterr().err



def test_logging_renders_json_with_bound_context_and_quiets_libraries(
    fake_app: list[Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from presence_server.logging_setup import configure_logging

    configure_logging("info", "json")
    configure_logging("info", "json")  # idempotent: still one handler, one line per event
    structlog.contextvars.bind_contextvars(sid="s-1", user="u-1", municipality="altbach")
    try:
        structlog.get_logger("presence_server.test").info("knock.sent", room="r-1")
        logging.getLogger("aiohttp.access").info("GET / 200")  # below the library floor
        logging.getLogger("engineio.server").warning("transport closed")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["knock.sent", "transport closed"]
    assert lines[0]["room"] == "r-1" and lines[0]["level"] == "info"
    assert all(line["sid"] == "s-1" and line["municipality"] == "altbach" for line in lines)
    assert lines[0]["timestamp"].endswith("Z")


def test_run_on_a_release_0_1_database_with_ambiguous_owners_stops_with_the_room_named(tmp_path: Path) -> None:
    database = tmp_path / "campus.sqlite3"
    database.write_bytes((ROOT / "tests" / "data" / "campus-0.1.sqlite3").read_bytes())
    config = tmp_path / "presence.toml"
    config.write_text(f'[storage]\nsqlite_path = "{database}"\n[http]\nport = 1\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "presence_server", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PRESENCE_LOG__FORMAT": "console"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "projekt-besprechung" in result.stderr and "campus.legacy_owners" in result.stderr
    assert "Traceback" not in result.stderr
