"""Settings: sources and their precedence, validation, and readable errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from presence_server.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOML = ROOT / "config" / "default.toml"
PRODUCTION_TOML = ROOT / "config" / "production.example.toml"
STRONG = "s" * 40


@pytest.fixture(autouse=True)
def _no_presence_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's shell must not change what these tests see.
    for name in list(os.environ):
        if name.upper().startswith("PRESENCE_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "presence.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(exc.value.problems)


# --- sources ----------------------------------------------------------------------------


def test_defaults_load_without_file_or_env() -> None:
    s = load_settings(env={})
    assert s.dev_mode is False
    assert (s.http.host, s.http.port, s.http.max_body_bytes, s.http.cors_origins) == ("127.0.0.1", 8080, 65536, [])
    assert (s.log.level, s.log.format) == ("info", "json")
    assert (s.storage.backend, s.storage.sqlite_path) == ("sqlite", "var/campus.sqlite3")
    assert (s.campus.seed_file, s.campus.expiry_sweep_seconds) == (None, 30)
    assert (s.presence.grace_seconds, s.presence.status_text_max) == (15, 140)
    assert (s.knock.timeout_seconds, s.knock.cooldown_seconds, s.knock.message_max) == (30, 20, 200)
    assert (s.limits.max_event_bytes, s.limits.events_per_second, s.limits.burst) == (16384, 20, 40)
    assert (s.auth.leeway_seconds, s.auth.max_token_ttl_seconds, s.auth.dev_token_ttl_seconds) == (30, 86400, 28800)
    assert s.auth.municipalities == {}
    assert (s.redis.url, s.redis.prefix) == (None, "vo:")


def test_default_toml_is_a_valid_dev_config() -> None:
    s = load_settings(DEFAULT_TOML, env={})
    assert s.dev_mode is True
    assert s.log.format == "console"
    assert s.storage.backend == "sqlite" and s.storage.sqlite_path == "var/campus.sqlite3"
    assert s.campus.seed_file == "config/demo_campus.toml"
    assert sorted(s.auth.municipalities) == ["altbach", "bergheim", "lindenau", "seefeld"]
    for muni in s.auth.municipalities.values():
        assert muni.algorithm == "HS256"
        assert muni.secret is not None and len(muni.secret.get_secret_value()) >= 32
        # The server's own origin is always allowed: no development origin is listed,
        # so none turns up in an embed page's frame-ancestors on another port or host.
        assert muni.allowed_origins == []
    assert s.http.cors_origins == [] and s.http.public_url is None
    assert s.auth.refresh_grace_seconds == 60


def test_production_example_validates_with_secret_from_env() -> None:
    s = load_settings(PRODUCTION_TOML, env={"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__SECRET": STRONG,
                                            "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET": STRONG})
    assert s.dev_mode is False
    assert s.log.format == "json"
    assert s.storage.sqlite_path.startswith("/var/lib/virtual-office/")
    altbach, bergheim = s.auth.municipalities["altbach"], s.auth.municipalities["bergheim"]
    assert altbach.algorithm == "HS256" and altbach.secret is not None
    assert altbach.secret.get_secret_value() == STRONG
    assert altbach.issuer is not None  # the file's keys survive next to the env secret
    assert bergheim.algorithm == "RS256" and bergheim.jwks_url is not None


def test_production_example_without_secret_names_the_env_var() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(PRODUCTION_TOML, env={})
    assert "auth.municipalities.altbach.secret" in problems(exc)
    assert "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__SECRET" in problems(exc)
    assert "auth.municipalities.altbach.webhooks.intranet.secret: required" in problems(exc)
    assert "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET" in problems(exc)


def test_env_overrides_a_nested_key_and_keeps_its_file_siblings(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nhost = "0.0.0.0"\nport = 7000\n')
    s = load_settings(path, env={"PRESENCE_HTTP__PORT": "9000"})
    assert s.http.host == "0.0.0.0"
    assert s.http.port == 9000


def test_overrides_beat_env_which_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nhost = "10.0.0.1"\nport = 7000\nmax_body_bytes = 1000\n')
    s = load_settings(path, env={"PRESENCE_HTTP__PORT": "9000", "PRESENCE_HTTP__HOST": "10.0.0.2"}, http={"port": 9100})
    assert (s.http.host, s.http.port, s.http.max_body_bytes) == ("10.0.0.2", 9100, 1000)


def test_env_var_names_are_case_insensitive_and_levels_too() -> None:
    s = load_settings(env={"presence_log__level": "DEBUG", "Presence_Storage__Backend": "memory"})
    assert s.log.level == "debug"
    assert s.storage.backend == "memory"


def test_env_can_add_a_whole_municipality_and_json_lists() -> None:
    s = load_settings(
        env={
            "PRESENCE_AUTH__MUNICIPALITIES__SEEFELD__ALGORITHM": "HS256",
            "PRESENCE_AUTH__MUNICIPALITIES__SEEFELD__SECRET": STRONG,
            "PRESENCE_HTTP__CORS_ORIGINS": '["https://a.example", "https://b.example"]',
        }
    )
    assert s.auth.municipalities["seefeld"].algorithm == "HS256"
    assert s.http.cors_origins == ["https://a.example", "https://b.example"]


def test_env_mapping_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESENCE_HTTP__PORT", "9999")
    assert load_settings().http.port == 9999
    assert load_settings(env={}).http.port == 8080


def test_unrelated_presence_variables_are_ignored() -> None:
    # PRESENCE_CONFIG names the file for the CLI; it is no setting.
    assert load_settings(env={"PRESENCE_CONFIG": "elsewhere.toml"}).http.port == 8080


def test_settings_are_immutable() -> None:
    s = load_settings(env={})
    with pytest.raises(Exception):
        s.http.port = 1  # type: ignore[misc]
    assert s.model_copy(update={"dev_mode": True}).dev_mode is True


# --- errors -----------------------------------------------------------------------------


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[log]\ncolour = "blue"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert "log.colour: unknown key" in problems(exc)
    assert str(path) in str(exc.value)


def test_unknown_top_level_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "[htpp]\nport = 1\n"), env={})
    assert "htpp: unknown key" in problems(exc)


def test_unknown_nested_key_from_env_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"PRESENCE_LOG__COLOUR": "blue"})
    assert "log.colour: unknown key" in problems(exc)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[http]\nport = 70000\n", "http.port: Input should be less than or equal to 65535 (got 70000)"),
        ("[http]\nport = 0\n", "http.port: Input should be greater than or equal to 1 (got 0)"),
        ('[http]\nport = "eighty"\n', "http.port: Input should be a valid integer"),
        ("[presence]\ngrace_seconds = 601\n", "presence.grace_seconds:"),
        ("[knock]\ntimeout_seconds = 0.5\n", "knock.timeout_seconds:"),
        ("[limits]\nmax_event_bytes = 100\n", "limits.max_event_bytes:"),
        ("[campus]\nexpiry_sweep_seconds = 0\n", "campus.expiry_sweep_seconds:"),
        ('[log]\nlevel = "verbose"\n', "log.level: Input should be 'debug', 'info', 'warning' or 'error'"),
        ('[storage]\nbackend = "postgres"\n', "storage.backend:"),
        ('dev_mode = "maybe"\n', "dev_mode: Input should be a valid boolean"),
        ('[http]\ncors_origins = "https://x"\n', "http.cors_origins: Input should be a valid list"),
        ("[auth.municipalities.altbach]\nsecret = 'x'\n", "auth.municipalities.altbach.algorithm: Field required"),
    ],
)
def test_invalid_values_name_the_dotted_key(tmp_path: Path, toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, toml), env={})
    assert expected in problems(exc)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = 70000\n[log]\ncolour = "x"\n[knock]\nmessage_max = -1\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert len(exc.value.problems) == 3
    assert str(exc.value).count("\n") == 3  # a header line and one line per problem


def test_invalid_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"PRESENCE_HTTP__PORT": "many"})
    assert "http.port: Input should be a valid integer" in problems(exc)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path / "nope.toml", env={})
    assert "file not found" in str(exc.value)


def test_unparseable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "[http\nport = \n"), env={})
    assert "not valid TOML" in str(exc.value)


def test_uppercase_municipality_id_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, f'[auth.municipalities.Altbach]\nalgorithm = "HS256"\nsecret = "{STRONG}"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert "auth.municipalities.Altbach: municipality ids are lowercase" in problems(exc)


# --- auth rules -------------------------------------------------------------------------


def test_short_hs256_secret_is_rejected_outside_dev_mode(tmp_path: Path) -> None:
    path = write(tmp_path, '[auth.municipalities.altbach]\nalgorithm = "HS256"\nsecret = "too-short-secret"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert "auth.municipalities.altbach.secret: must be at least 32 bytes" in problems(exc)
    assert "too-short-secret" not in str(exc.value)  # never echo a secret


def test_short_hs256_secret_is_allowed_in_dev_mode(tmp_path: Path) -> None:
    path = write(tmp_path, 'dev_mode = true\n[auth.municipalities.altbach]\nalgorithm = "HS256"\nsecret = "short"\n')
    assert load_settings(path, env={}).auth.municipalities["altbach"].secret is not None


def test_secret_is_never_shown_even_when_its_type_is_wrong(tmp_path: Path) -> None:
    path = write(tmp_path, '[auth.municipalities.altbach]\nalgorithm = "HS256"\nsecret = ["hunter2hunter2"]\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert "auth.municipalities.altbach.secret" in problems(exc)
    assert "hunter2" not in str(exc.value)


PEM = "-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----\\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('algorithm = "RS256"\n', "altbach.algorithm: RS256 needs exactly one of"),
        (
            f'algorithm = "RS256"\npublic_key = "{PEM}"\njwks_url = "https://idp.example/certs"\n',
            "altbach.algorithm: RS256 needs exactly one of",
        ),
        (
            f'algorithm = "RS256"\njwks_url = "https://idp.example/certs"\nsecret = "{STRONG}"\n',
            "altbach.secret: not allowed with RS256",
        ),
        (
            f'algorithm = "HS256"\nsecret = "{STRONG}"\npublic_key_file = "k.pem"\n',
            "altbach.public_key_file: not allowed with HS256",
        ),
        ('algorithm = "HS256"\n', "altbach.secret: required for HS256"),
        ('algorithm = "ES256"\nsecret = "x"\n', "altbach.algorithm: Input should be 'HS256' or 'RS256'"),
        ('algorithm = "RS256"\njwks_url = "file:///etc/passwd"\n', "altbach.jwks_url: must be an http(s) URL"),
    ],
)
def test_key_material_must_match_the_algorithm(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "[auth.municipalities.altbach]\n" + body), env={})
    assert f"auth.municipalities.{expected}" in problems(exc)


def test_dev_token_ttl_must_not_exceed_the_maximum() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={}, auth={"max_token_ttl_seconds": 600, "dev_token_ttl_seconds": 3600})
    assert "auth.dev_token_ttl_seconds: must not exceed" in problems(exc)


def test_plain_settings_class_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESENCE_KNOCK__MESSAGE_MAX", "50")
    assert Settings().knock.message_max == 50
