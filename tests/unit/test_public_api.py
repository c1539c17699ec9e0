"""The public surface: ``provena_like.__all__`` is exactly what is exported, and importable."""

from __future__ import annotations

import importlib
import inspect

import httpx
import pytest

import provena_like
from provena_like import ProvenaClient
from provena_like._core import errors


def test_all_names_are_importable() -> None:
    for name in provena_like.__all__:
        assert hasattr(provena_like, name), name


def test_all_has_no_duplicates() -> None:
    assert len(provena_like.__all__) == len(set(provena_like.__all__))


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from provena_like import *", namespace)  # the point of the test
    namespace.pop("__builtins__")
    assert set(namespace) == set(provena_like.__all__)


def test_every_public_module_level_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(provena_like).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(provena_like.__all__)


def test_every_error_class_is_exported() -> None:
    error_classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ProvenaError)
    }
    assert error_classes <= set(provena_like.__all__)
    for name in error_classes:
        assert getattr(provena_like, name) is getattr(errors, name)


@pytest.mark.parametrize(
    "name", ["ProvenaClient", "ProvenaConfig", "AsyncPaginator", "Page", "__version__"]
)
def test_core_names_are_exported(name: str) -> None:
    assert name in provena_like.__all__


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("Locked", "Conflict"),
        ("ReleaseStateConflict", "Conflict"),
        ("NotYourReview", "Forbidden"),
    ],
)
def test_review_errors_are_exported(name: str, base: str) -> None:
    assert name in provena_like.__all__
    assert issubclass(getattr(provena_like, name), getattr(provena_like, base))


def test_version() -> None:
    from provena_like._version import __version__

    assert provena_like.__version__ == __version__


@pytest.mark.parametrize(
    "module", ["provena_like._core", "provena_like.clients.registry", "provena_like.clients.auth"]
)
def test_submodule_all_is_importable(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


# -- ProvenaClient's attribute names say their layer -------------------------------------------


def _layer(value: object) -> str:
    module = type(value).__module__
    if module.startswith("provena_like.clients."):
        return "L2"
    if module.startswith("provena_like.modules."):
        return "L3"
    if isinstance(value, httpx.Auth):
        return "L1"
    return "other"


def test_client_attribute_names_say_their_layer() -> None:
    pv = ProvenaClient(auth=httpx.Auth())
    seen: dict[str, set[str]] = {"L1": set(), "L2": set(), "L3": set()}
    # the clients and modules are built on first access: the declared ones, and any other
    names = {n for n in (*ProvenaClient.__annotations__, *vars(pv)) if not n.startswith("_")}
    for name in sorted(names):
        value = getattr(pv, name)
        layer = _layer(value)
        if layer == "L2":
            assert name.endswith("_client"), f"L2 client {name!r} needs the '_client' suffix"
        elif layer == "L3":
            assert "_" not in name, f"L3 module {name!r} is named after the job (a bare noun)"
        elif layer == "L1":
            assert name == "auth_manager"
        else:
            assert name == "config", f"{name!r}: which layer?"
        if layer in seen:
            seen[layer].add(name)
    services = {"registry", "search", "auth", "datastore", "review", "crawl"}
    assert seen["L2"] == {f"{s}_client" for s in services}  # one L2 client per service
    assert seen["L3"] == {"datastore", "registration", "patcher", "archive", "crawler"}
    assert seen["L1"] == {"auth_manager"}


@pytest.mark.parametrize(
    ("old", "new"),
    [("registry", "registry_client"), ("search", "search_client"), ("auth", "auth_client")],
)
def test_old_client_names_are_deprecated_aliases(old: str, new: str) -> None:
    pv = ProvenaClient(auth=httpx.Auth())
    with pytest.warns(
        DeprecationWarning, match=f"ProvenaClient.{old} is deprecated; use ProvenaClient.{new}"
    ):
        value = getattr(pv, old)
    assert value is getattr(pv, new)
    copy = pv.with_options(timeout=5)
    with pytest.warns(DeprecationWarning):
        assert getattr(copy, old) is getattr(copy, new)
