"""Config.toml, profiles and environment overrides behind `configurable()`.

Each test writes a small project module to a temporary directory and imports it while the
resolver is active, the way the project loader does.
"""

from __future__ import annotations

import importlib.util
import itertools
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import workbench.config as authoring
from workbench.errors import ConfigError, ConnectionConfigError, ProjectError, WorkbenchError
from workbench.project.config import ConfigResolver

_counter = itertools.count()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


def import_module(resolver: ConfigResolver, path: Path) -> ModuleType:
    """Import `path` as `<unique>.<stem>` with `resolver` active."""
    name = f"iwbtest{next(_counter)}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with resolver.active():
        spec.loader.exec_module(module)
    return module


ORDERS = """
from workbench.config import configurable

MAX_ITEMS = configurable("max_items", int, default=50)
"""


def located(errors: list[WorkbenchError]) -> list[ProjectError]:
    """The errors, checked to carry a location (file, line, key)."""
    assert all(isinstance(e, ProjectError) for e in errors), errors
    return [e for e in errors if isinstance(e, ProjectError)]


def declared(resolver: ConfigResolver, name: str) -> authoring.Declared:
    matches = [d for d in resolver.declared if d.name == name]
    assert len(matches) == 1, resolver.declared
    return matches[0]


# --------------------------------------------------------------------------- precedence


def test_default_when_nothing_sets_it(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    resolver = ConfigResolver(tmp_path, env={})
    assert import_module(resolver, module).MAX_ITEMS == 50
    decl = declared(resolver, "max_items")
    assert (decl.module, decl.value, decl.origin, decl.required) == ("orders", 50, "default", False)
    assert decl.file == "artifacts/orders.py"
    assert decl.line == 3
    assert decl.type_name == "int"
    assert resolver.errors == []


def test_config_toml_then_profile_then_env(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    write(tmp_path / "Config.toml", "[orders]\nmax_items = 10\n")
    write(tmp_path / "Config.prod.toml", "[orders]\nmax_items = 20\n")

    base = ConfigResolver(tmp_path, env={})
    assert import_module(base, module).MAX_ITEMS == 10
    assert declared(base, "max_items").origin == "Config.toml"

    prod = ConfigResolver(tmp_path, profile="prod", env={})
    assert import_module(prod, module).MAX_ITEMS == 20
    assert declared(prod, "max_items").origin == "Config.prod.toml"

    env = ConfigResolver(tmp_path, profile="prod", env={"IWB_ORDERS__MAX_ITEMS": "30"})
    assert import_module(env, module).MAX_ITEMS == 30
    assert declared(env, "max_items").origin == "env:IWB_ORDERS__MAX_ITEMS"
    assert base.errors == prod.errors == env.errors == []


def test_profile_overlay_merges_key_by_key(tmp_path: Path) -> None:
    module = write(
        tmp_path / "artifacts" / "orders.py",
        """
        from pydantic import BaseModel
        from workbench.config import configurable

        class Limits(BaseModel):
            low: int
            high: int

        REGION = configurable("region", str)
        URL = configurable("url", str)
        LIMITS = configurable("limits", Limits)
        """,
    )
    write(
        tmp_path / "Config.toml",
        """
        [orders]
        region = "eu"
        url = "http://dev"

        [orders.limits]
        low = 1
        high = 2
        """,
    )
    write(tmp_path / "Config.staging.toml", '[orders]\nurl = "http://staging"\nlimits.high = 9\n')
    resolver = ConfigResolver(tmp_path, profile="staging", env={})
    mod = import_module(resolver, module)
    assert resolver.errors == []
    assert (mod.REGION, mod.URL) == ("eu", "http://staging")
    assert (mod.LIMITS.low, mod.LIMITS.high) == (1, 9)
    assert declared(resolver, "region").origin == "Config.toml"
    assert declared(resolver, "url").origin == "Config.staging.toml"


def test_missing_profile_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "Config.toml", "[orders]\nmax_items = 10\n")
    resolver = ConfigResolver(tmp_path, profile="prod", env={})
    assert len(resolver.errors) == 1
    err = resolver.errors[0]
    assert isinstance(err, ConfigError)
    assert "profile 'prod' has no Config.prod.toml" in err.message


def test_invalid_profile_name(tmp_path: Path) -> None:
    resolver = ConfigResolver(tmp_path, profile="../etc", env={})
    assert len(resolver.errors) == 1
    assert "Profile name '../etc' is not valid" in resolver.errors[0].message


# --------------------------------------------------------------------------- types

TYPED = """
from datetime import date
from pydantic import BaseModel
from workbench.config import configurable

class Retry(BaseModel):
    attempts: int
    backoff: float = 0.5

COUNT = configurable("count", int)
RATIO = configurable("ratio", float)
ENABLED = configurable("enabled", bool)
TAGS = configurable("tags", list[str])
RETRY = configurable("retry", Retry)
OPTIONAL = configurable("optional", int | None, default=None)
SINCE = configurable("since", date)
"""


def test_typed_values_from_config_toml(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "typed.py", TYPED)
    write(
        tmp_path / "Config.toml",
        """
        [typed]
        count = 3
        ratio = 2          # an int is fine for a float
        enabled = true
        tags = ["a", "b"]
        retry = { attempts = 4 }
        since = 2024-05-01
        """,
    )
    resolver = ConfigResolver(tmp_path, env={})
    mod = import_module(resolver, module)
    assert resolver.errors == []
    assert mod.COUNT == 3
    assert mod.RATIO == 2.0 and isinstance(mod.RATIO, float)
    assert mod.ENABLED is True
    assert mod.TAGS == ["a", "b"]
    assert (mod.RETRY.attempts, mod.RETRY.backoff) == (4, 0.5)
    assert mod.OPTIONAL is None
    assert str(mod.SINCE) == "2024-05-01"
    assert declared(resolver, "tags").type_name == "list[str]"


def test_typed_values_from_the_environment(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "typed.py", TYPED)
    env = {
        "IWB_TYPED__COUNT": "7",
        "IWB_TYPED__RATIO": "0.25",
        "IWB_TYPED__ENABLED": "false",
        "IWB_TYPED__TAGS": '["x", "y", "z"]',
        "IWB_TYPED__RETRY": '{"attempts": 2, "backoff": 1.5}',
        "IWB_TYPED__OPTIONAL": "11",
        "IWB_TYPED__SINCE": "2023-01-02",
    }
    resolver = ConfigResolver(tmp_path, env=env)
    mod = import_module(resolver, module)
    assert resolver.errors == []
    assert (mod.COUNT, mod.RATIO, mod.ENABLED) == (7, 0.25, False)
    assert mod.TAGS == ["x", "y", "z"]
    assert (mod.RETRY.attempts, mod.RETRY.backoff) == (2, 1.5)
    assert mod.OPTIONAL == 11
    assert str(mod.SINCE) == "2023-01-02"


@pytest.mark.parametrize(
    ("line_text", "key", "shown", "needle"),
    [
        ('count = "abc"', "count", "'abc'", "valid integer"),
        ('count = "5"', "count", "'5'", "valid integer"),
        ('ratio = "fast"', "ratio", "'fast'", "valid number"),
        ("enabled = 1", "enabled", "1", "valid boolean"),
        ('tags = "a,b"', "tags", "'a,b'", "valid list"),
    ],
)
def test_ill_typed_value_names_file_line_key_and_value(
    tmp_path: Path, line_text: str, key: str, shown: str, needle: str
) -> None:
    module = write(tmp_path / "artifacts" / "typed.py", TYPED)
    values = {
        "count": "count = 1",
        "ratio": "ratio = 1.0",
        "enabled": "enabled = true",
        "tags": "tags = []",
    }
    values[key] = line_text
    body = "\n".join(values.values())
    write(
        tmp_path / "Config.toml",
        f"# settings\n[typed]\n{body}\nretry = {{ attempts = 1 }}\nsince = 2024-01-01\n",
    )
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    assert len(resolver.errors) == 1, resolver.errors
    err = resolver.errors[0]
    assert isinstance(err, ConfigError)
    assert err.file == "Config.toml"
    assert err.line == 3 + list(values).index(key)
    assert err.key == f"typed.{key}"
    assert f"[typed] {key} = {shown} in Config.toml" in err.message
    assert needle in err.message
    assert f"IWB_TYPED__{key.upper()}" in err.message


def test_ill_typed_nested_field_points_at_its_line(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "typed.py", TYPED)
    write(
        tmp_path / "Config.toml",
        """
        [typed]
        count = 1
        ratio = 1.0
        enabled = true
        tags = ["ok",
                42]
        since = 2024-01-01

        [typed.retry]
        backoff = 1.0
        attempts = "many"
        """,
    )
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    by_key = {e.key: e for e in located(resolver.errors)}
    assert set(by_key) == {"typed.tags", "typed.retry"}
    assert by_key["typed.tags"].line == 6
    assert "[1]: Input should be a valid string" in by_key["typed.tags"].message
    assert by_key["typed.retry"].line == 11
    assert "attempts: Input should be a valid integer" in by_key["typed.retry"].message


def test_ill_typed_value_in_profile_names_the_profile_file(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    write(tmp_path / "Config.toml", "[orders]\nmax_items = 10\n")
    (tmp_path / "Config.prod.toml").write_text('\n\n[orders]\nmax_items = "lots"\n', "utf-8")
    resolver = ConfigResolver(tmp_path, profile="prod", env={})
    assert import_module(resolver, module).MAX_ITEMS == 50  # the default, so the import goes on
    [err] = resolver.errors
    assert isinstance(err, ConfigError)
    assert (err.file, err.line, err.key) == ("Config.prod.toml", 4, "orders.max_items")
    assert "'lots'" in err.message


def test_ill_typed_environment_value_names_the_variable(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    resolver = ConfigResolver(tmp_path, env={"IWB_ORDERS__MAX_ITEMS": "ten"})
    assert import_module(resolver, module).MAX_ITEMS == 50
    [err] = resolver.errors
    assert "IWB_ORDERS__MAX_ITEMS" in err.message
    assert "'ten'" in err.message
    assert "artifacts/orders.py:3" in err.message


# --------------------------------------------------------------------------- errors


def test_missing_required_names_key_declaration_and_env_var(tmp_path: Path) -> None:
    module = write(
        tmp_path / "artifacts" / "billing.py",
        """
        from workbench.config import configurable

        # the key is required: no default
        API_URL = configurable("api_url", str, description="billing API")
        """,
    )
    resolver = ConfigResolver(tmp_path, env={})
    assert import_module(resolver, module).API_URL is None
    [err] = resolver.errors
    assert isinstance(err, ConfigError)
    assert err.key == "billing.api_url"
    assert (err.file, err.line) == ("artifacts/billing.py", 4)
    assert "artifacts/billing.py:4" in err.message
    assert "[billing]" in err.message and "api_url" in err.message
    assert "Config.toml" in err.message
    assert "IWB_BILLING__API_URL" in err.message
    decl = declared(resolver, "api_url")
    assert decl.required and decl.description == "billing API"


def test_toml_syntax_error_is_collected_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "Config.toml", '[orders]\nmax_items = 10\nname = "unterminated\n')
    module = write(
        tmp_path / "artifacts" / "orders.py",
        'from workbench.config import configurable\nX = configurable("x", int)\n',
    )
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    # the syntax error alone: the keys of a file that did not parse are not "missing"
    [err] = resolver.errors
    assert isinstance(err, ConfigError)
    assert (err.file, err.line) == ("Config.toml", 3)
    assert "not valid TOML" in err.message


def test_syntax_error_in_profile_file(tmp_path: Path) -> None:
    write(tmp_path / "Config.toml", "[orders]\nmax_items = 10\n")
    write(tmp_path / "Config.prod.toml", "[orders\n")
    resolver = ConfigResolver(tmp_path, profile="prod", env={})
    [err] = located(resolver.errors)
    assert (err.file, err.line) == ("Config.prod.toml", 1)


def test_several_errors_are_collected_in_one_pass(tmp_path: Path) -> None:
    module = write(
        tmp_path / "artifacts" / "many.py",
        """
        from workbench.config import configurable

        A = configurable("a", int)
        B = configurable("b", int, default=2)
        C = configurable("c", bool, default=False)
        D = configurable("d", str, default="fine")
        REACHED = True
        """,
    )
    write(tmp_path / "Config.toml", '[many]\nb = "two"\nc = "yes"\n')
    resolver = ConfigResolver(tmp_path, env={})
    mod = import_module(resolver, module)
    assert mod.REACHED and mod.D == "fine"
    assert (mod.A, mod.B, mod.C) == (None, 2, False)
    errors = located(resolver.errors)
    assert [e.key for e in errors] == ["many.a", "many.b", "many.c"]
    assert [e.line for e in errors] == [3, 2, 3]
    assert [e.file for e in errors] == ["artifacts/many.py", "Config.toml", "Config.toml"]


def test_secrets_are_masked_and_never_in_messages(tmp_path: Path) -> None:
    module = write(
        tmp_path / "artifacts" / "vault.py",
        """
        from workbench.config import configurable

        TOKEN = configurable("token", str, secret=True)
        PIN = configurable("pin", int, secret=True, default=0)
        SALT = configurable("salt", int, secret=True, default=0)
        KEY = configurable("key", str, secret=True)
        """,
    )
    write(tmp_path / "Config.toml", '[vault]\ntoken = "s3cr3t-token"\npin = "hunter2"\n')
    resolver = ConfigResolver(tmp_path, env={"IWB_VAULT__SALT": "pepper99"})
    mod = import_module(resolver, module)
    assert mod.TOKEN == "s3cr3t-token"
    token = declared(resolver, "token")
    assert token.value == "s3cr3t-token"
    assert token.shown() == "****"
    errors = located(resolver.errors)
    assert [e.key for e in errors] == ["vault.pin", "vault.salt", "vault.key"]
    for err in errors[:2]:
        assert "hunter2" not in str(err) and "pepper99" not in str(err)
        assert "the value" in err.message.lower()
    assert errors[0].line == 3
    assert declared(resolver, "pin").shown() == "****"
    # a secret that has no value shows as missing, not as a mask
    assert declared(resolver, "key").shown() is None


def test_declared_shown_leaves_plain_values(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    assert declared(resolver, "max_items").shown() == 50


def test_every_declaration_is_recorded_in_order(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    write(tmp_path / "Config.toml", "[orders]\nmax_items = 10\n")
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    before = len(resolver.declared)
    import_module(resolver, module)
    assert [d.name for d in resolver.declared[before:]] == ["max_items"]
    assert len(resolver.declared) == 2
    assert resolver.value("orders", "max_items") == 10
    with pytest.raises(KeyError):
        resolver.value("orders", "nope")


# --------------------------------------------------------------------------- connections


CONNECTED = """
from workbench.config import connection

inventory = connection("inventory")
crm = connection("crm")
"""


def test_unknown_connection_name_is_an_error(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "shop.py", CONNECTED)
    resolver = ConfigResolver(tmp_path, env={})
    resolver.connection_names = {"inventory", "billing"}
    mod = import_module(resolver, module)
    assert repr(mod.crm) == "connection('crm')"
    [err] = resolver.errors
    assert isinstance(err, ConnectionConfigError)
    assert (err.file, err.line, err.key) == ("artifacts/shop.py", 4, "crm")
    assert err.message == (
        "Unknown connection 'crm' (artifacts/shop.py:4). connections.toml defines: "
        "billing, inventory."
    )


def test_connection_names_unchecked_until_known(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "shop.py", CONNECTED)
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    assert resolver.errors == []


# --------------------------------------------------------------------------- queries


def test_lookup_precedence_and_missing(tmp_path: Path) -> None:
    write(
        tmp_path / "Config.toml",
        '[inventory]\nbase_url = "http://base"\nport = 8080\nauth = { user = "u" }\n',
    )
    write(tmp_path / "Config.prod.toml", '[inventory]\nbase_url = "http://prod"\n')
    resolver = ConfigResolver(tmp_path, env={})
    assert resolver.lookup("inventory.base_url") == "http://base"
    assert resolver.lookup("inventory.port") == 8080
    assert resolver.lookup("inventory.auth.user") == "u"
    prod = ConfigResolver(tmp_path, profile="prod", env={"IWB_INVENTORY__PORT": "9090"})
    assert prod.lookup("inventory.base_url") == "http://prod"
    assert prod.lookup("inventory.port") == "9090"
    with pytest.raises(ConfigError, match="IWB_INVENTORY__TIMEOUT") as info:
        resolver.lookup("inventory.timeout")
    assert info.value.key == "inventory.timeout"
    with pytest.raises(ConfigError, match=r"'inventory\.auth\.password' is missing"):
        resolver.lookup("inventory.auth.password")
    with pytest.raises(ConfigError, match="not a configuration reference"):
        resolver.lookup("inventory")


def test_unused_keys_are_warnings_with_lines(tmp_path: Path) -> None:
    module = write(tmp_path / "artifacts" / "orders.py", ORDERS)
    write(
        tmp_path / "Config.toml",
        """
        debug = true

        [orders]
        max_items = 10
        max_itmes = 11

        [inventory]
        base_url = "http://x"
        """,
    )
    resolver = ConfigResolver(tmp_path, env={})
    import_module(resolver, module)
    resolver.lookup("inventory.base_url")  # read by connections.toml: used
    unused = resolver.unused_keys()
    assert resolver.errors == []
    assert [(u.table, u.key, u.file, u.line) for u in unused] == [
        ("", "debug", "Config.toml", 1),
        ("orders", "max_itmes", "Config.toml", 5),
    ]
    assert str(unused[1]).startswith("Config.toml:5: [orders] max_itmes")


def test_active_sets_and_resets_the_source(tmp_path: Path) -> None:
    resolver = ConfigResolver(tmp_path, env={})
    assert authoring._source.get() is None
    with pytest.raises(RuntimeError), resolver.active():
        assert authoring._source.get() is resolver
        raise RuntimeError("import failed")
    assert authoring._source.get() is None
