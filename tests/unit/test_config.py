"""ProvenaConfig: defaults, service URLs and the precedence of kwargs > env > file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from provena_like import ProvenaConfig, UsageError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PROVENA_* variables, and a private per-user config dir."""
    for name in list(os.environ):
        if name.startswith("PROVENA_"):
            monkeypatch.delenv(name)
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("kwargs", "service", "url"),
    [
        ({}, "auth", "http://127.0.0.1:8000/auth"),
        ({}, "registry", "http://127.0.0.1:8000/registry"),
        ({}, "datastore", "http://127.0.0.1:8000/datastore"),
        ({}, "search", "http://127.0.0.1:8000/search"),
        ({}, "transfer", "http://127.0.0.1:8000"),
        ({"base_url": "https://p.example.org/"}, "registry", "https://p.example.org/registry"),
        ({"base_url": "https://p.example.org/api"}, "auth", "https://p.example.org/api/auth"),
        (
            {"registry_url": "https://reg.example.org/v2/"},
            "registry",
            "https://reg.example.org/v2",
        ),
        ({"registry_url": "https://reg.example.org"}, "auth", "http://127.0.0.1:8000/auth"),
        (
            {"transfer_url": "https://t.example.org/"},
            "transfer",
            "https://t.example.org",
        ),
        ({"search_url": "http://s:9200"}, "search", "http://s:9200"),
        ({"crawl_url": "http://c:9300"}, "crawl", "http://c:9300"),
        ({"datastore_url": "http://d/"}, "datastore", "http://d"),
        (
            {"auth_url": "https://kc.example.org/realms/x"},
            "auth",
            "https://kc.example.org/realms/x",
        ),
    ],
)
def test_service_url(kwargs: dict[str, Any], service: Any, url: str) -> None:
    assert ProvenaConfig(**kwargs).service_url(service) == url


def test_unknown_service() -> None:
    with pytest.raises(UsageError, match="unknown service"):
        ProvenaConfig().service_url("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "issuer"),
    [
        ({}, "http://127.0.0.1:8000/auth"),
        ({"auth_url": "https://a.example.org/auth"}, "https://a.example.org/auth"),
        ({"issuer": "https://kc.example.org/realms/r/"}, "https://kc.example.org/realms/r"),
    ],
)
def test_resolved_issuer(kwargs: dict[str, Any], issuer: str) -> None:
    assert ProvenaConfig(**kwargs).resolved_issuer == issuer


def test_resolved_token_dir(clean_env: Path, tmp_path: Path) -> None:
    assert ProvenaConfig().resolved_token_dir == clean_env / "provena-like" / "tokens"
    assert ProvenaConfig(token_dir=tmp_path / "t").resolved_token_dir == tmp_path / "t"
    home = Path("~").expanduser()
    assert ProvenaConfig(token_dir=Path("~/tok")).resolved_token_dir == home / "tok"


def test_defaults() -> None:
    config = ProvenaConfig()
    assert config.client_id == "provena-like-cli"
    assert config.scopes == ("openid", "offline_access")
    assert (config.timeout, config.connect_timeout) == (30.0, 10.0)
    assert (config.max_retries, config.backoff_initial, config.backoff_max) == (3, 0.5, 8.0)
    assert config.max_retry_after == 60.0
    assert config.verify is True
    assert config.client_secret is None and config.access_token is None


def test_frozen() -> None:
    config = ProvenaConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.timeout = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"registry_url": "registry.example.org"}, "registry_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "slow"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"client_id": ""}, "client_id"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_replace_rejects_bad_values(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=field) as info:
        ProvenaConfig().replace(**kwargs)
    assert "keyword argument" in str(info.value)


def test_secrets_never_shown() -> None:
    config = ProvenaConfig(
        client_secret=SecretStr("client-secret-value"), access_token="access-token-value"
    )
    for text in (repr(config), str(config), f"{config}", repr(config.model_dump())):
        assert "client-secret-value" not in text
        assert "access-token-value" not in text
    assert config.access_token is not None
    assert config.access_token.get_secret_value() == "access-token-value"


def test_repr_shows_non_default_fields() -> None:
    text = repr(ProvenaConfig(base_url="https://p.example.org", max_retries=1))
    assert "https://p.example.org" in text and "max_retries=1" in text
    assert "timeout" not in text


# -- load(): precedence -----------------------------------------------------------------


def test_load_defaults_without_file_or_env() -> None:
    assert ProvenaConfig.load() == ProvenaConfig()


def test_load_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        'base_url = "https://file.example.org"\n'
        'client_id = "from-file"\n'
        "timeout = 11\n"
        "max_retries = 1\n",
    )
    monkeypatch.setenv("PROVENA_CLIENT_ID", "from-env")
    monkeypatch.setenv("PROVENA_TIMEOUT", "22")
    config = ProvenaConfig.load(path, timeout=33)
    assert config.base_url == "https://file.example.org"  # file only
    assert config.client_id == "from-env"  # env beats file
    assert config.timeout == 33.0  # kwarg beats env and file
    assert config.max_retries == 1


@pytest.mark.parametrize(
    ("var", "value", "field", "expected"),
    [
        ("PROVENA_BASE_URL", "https://env.example.org/", "base_url", "https://env.example.org"),
        ("PROVENA_REGISTRY_URL", "http://r", "registry_url", "http://r"),
        ("PROVENA_AUTH_URL", "http://a", "auth_url", "http://a"),
        ("PROVENA_ISSUER", "http://kc/realms/x", "issuer", "http://kc/realms/x"),
        ("PROVENA_CLIENT_ID", "pipeline", "client_id", "pipeline"),
        ("PROVENA_SCOPES", "openid  email profile", "scopes", ("openid", "email", "profile")),
        ("PROVENA_TIMEOUT", "2.5", "timeout", 2.5),
        ("PROVENA_CONNECT_TIMEOUT", "1", "connect_timeout", 1.0),
        ("PROVENA_MAX_RETRIES", "0", "max_retries", 0),
        ("PROVENA_BACKOFF_INITIAL", "0.1", "backoff_initial", 0.1),
        ("PROVENA_BACKOFF_MAX", "3", "backoff_max", 3.0),
        ("PROVENA_MAX_RETRY_AFTER", "120", "max_retry_after", 120.0),
        ("PROVENA_TOKEN_DIR", "/tmp/provena-tokens", "token_dir", Path("/tmp/provena-tokens")),
        ("PROVENA_VERIFY", "false", "verify", False),
        ("PROVENA_VERIFY", "1", "verify", True),
    ],
)
def test_load_env_vars(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(var, value)
    assert getattr(ProvenaConfig.load(), field) == expected


@pytest.mark.parametrize("var", ["PROVENA_CLIENT_SECRET", "PROVENA_ACCESS_TOKEN"])
def test_load_secret_env_vars(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "very-secret")
    config = ProvenaConfig.load()
    field = var.removeprefix("PROVENA_").lower()
    secret = getattr(config, field)
    assert secret.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(config)


def test_empty_env_var_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVENA_CLIENT_SECRET", "")
    assert ProvenaConfig.load().client_secret is None


def test_unrelated_provena_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVENA_SERVER_DATABASE_URL", "sqlite://")
    assert ProvenaConfig.load() == ProvenaConfig()


def test_scopes_from_file_as_list_or_string(tmp_path: Path) -> None:
    as_list = write(tmp_path / "a.toml", 'scopes = ["openid", "email"]\n')
    as_string = write(tmp_path / "b.toml", 'scopes = "openid email"\n')
    assert ProvenaConfig.load(as_list).scopes == ("openid", "email")
    assert ProvenaConfig.load(as_string).scopes == ("openid", "email")


def test_config_file_from_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path / "custom.toml", "max_retries = 9\n")
    monkeypatch.setenv("PROVENA_CONFIG_FILE", str(path))
    assert ProvenaConfig.load().max_retries == 9


def test_explicit_file_beats_config_file_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVENA_CONFIG_FILE", str(write(tmp_path / "e.toml", "max_retries = 9\n")))
    assert ProvenaConfig.load(write(tmp_path / "x.toml", "max_retries = 4\n")).max_retries == 4


def test_default_config_file_is_used_when_present(clean_env: Path) -> None:
    write(clean_env / "provena-like" / "config.toml", 'client_id = "from-default-file"\n')
    assert ProvenaConfig.default_config_file() == clean_env / "provena-like" / "config.toml"
    assert ProvenaConfig.load().client_id == "from-default-file"


# -- load(): errors name the source and the field -----------------------------------------


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        pytest.param("colour = 'blue'\n", ["colour", "c.toml"], id="unknown-key"),
        pytest.param("timeout = 'slow'\n", ["timeout", "c.toml"], id="bad-type"),
        pytest.param("max_retries = -3\n", ["max_retries", "c.toml"], id="bad-range"),
        pytest.param("base_url = 'nope'\n", ["base_url", "c.toml"], id="bad-url"),
        pytest.param("timeout = \n", ["c.toml", "not valid TOML"], id="bad-toml"),
    ],
)
def test_file_errors_name_source_and_field(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(UsageError) as info:
        ProvenaConfig.load(path)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("PROVENA_TIMEOUT", "soon", "timeout"),
        ("PROVENA_MAX_RETRIES", "many", "max_retries"),
        ("PROVENA_VERIFY", "perhaps", "verify"),
        ("PROVENA_BASE_URL", "localhost:8000", "base_url"),
    ],
)
def test_env_errors_name_variable_and_field(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError) as info:
        ProvenaConfig.load()
    assert var in str(info.value)
    assert field in str(info.value)


def test_bad_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "client_secret = 12345678901\n")
    with pytest.raises(UsageError) as info:
        ProvenaConfig.load(path)
    assert "client_secret" in str(info.value)
    assert "12345678901" not in str(info.value)


def test_unknown_keyword_override() -> None:
    with pytest.raises(UsageError, match="keyword argument"):
        ProvenaConfig.load(colour="blue")


@pytest.mark.parametrize("use_env", [False, True])
def test_missing_explicit_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, use_env: bool
) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(UsageError, match="does not exist"):
        if use_env:
            monkeypatch.setenv("PROVENA_CONFIG_FILE", str(missing))
            ProvenaConfig.load()
        else:
            ProvenaConfig.load(missing)


_CID = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"


def test_local_endpoints_from_the_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        f"""
[local_endpoints.lab-pc]
collection = "{_CID.upper()}"
path = "/C/data/raw/"
directory = 'C:\\data\\raw'

[local_endpoints.nas]
collection = "{_CID}"
path = "/~/share"
directory = '\\\\nas\\lab\\raw'

[local_endpoints.laptop]
collection = "{_CID}"
directory = "/srv/globus"
""",
    )
    endpoints = ProvenaConfig.load(path).local_endpoints
    assert sorted(endpoints) == ["lab-pc", "laptop", "nas"]
    pc = endpoints["lab-pc"]
    assert (pc.collection, pc.path, pc.directory) == (_CID, "/C/data/raw", "C:\\data\\raw")
    assert pc.paths.collection_path("C:\\data\\raw\\s1\\a.bin") == "/C/data/raw/s1/a.bin"
    assert str(endpoints["nas"].paths.local_path("/~/share/x")) == "\\\\nas\\lab\\raw\\x"
    assert endpoints["laptop"].path == "/"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('collection = "nope"\ndirectory = "/d"', "local_endpoints.pc.collection"),
        (f'collection = "{_CID}"\ndirectory = "relative"', "local_endpoints.pc.directory"),
        (f'collection = "{_CID}"\ndirectory = "/d"\npath = "/a/../b"', "local_endpoints.pc.path"),
        (f'collection = "{_CID}"', "local_endpoints.pc.directory"),
        (f'collection = "{_CID}"\ndirectory = "/d"\nroot = "/"', "local_endpoints.pc.root"),
    ],
)
def test_a_bad_local_endpoint_names_the_entry_and_field(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = write(tmp_path / "c.toml", f"[local_endpoints.pc]\n{entry}\n")
    with pytest.raises(UsageError, match=message) as info:
        ProvenaConfig.load(path)
    assert str(path) in str(info.value)


def test_local_endpoint_names_are_plain(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        f'[local_endpoints."a=b"]\ncollection = "{_CID}"\ndirectory = "/d"\n',
    )
    with pytest.raises(UsageError, match="local endpoint name 'a=b'"):
        ProvenaConfig.load(path)


def test_local_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.dumps({"rig": {"collection": _CID, "directory": "/data"}})
    monkeypatch.setenv("PROVENA_LOCAL_ENDPOINTS", doc)
    rig = ProvenaConfig.load().local_endpoints["rig"]
    assert (rig.collection, rig.path, rig.directory) == (_CID, "/", "/data")
    monkeypatch.setenv("PROVENA_LOCAL_ENDPOINTS", "{nope")
    with pytest.raises(UsageError, match="PROVENA_LOCAL_ENDPOINTS"):
        ProvenaConfig.load()
