"""``provena_like.auth.__all__`` is exactly the public surface of the auth package."""

from __future__ import annotations

import importlib

import provena_like.auth as auth

SUBMODULES = ("flows", "manager", "oidc", "store", "token_set")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from provena_like.auth import *", namespace)  # the point of the test
    namespace.pop("__builtins__")
    assert set(namespace) == set(auth.__all__)
    assert len(auth.__all__) == len(set(auth.__all__))


def test_every_submodule_export_is_re_exported() -> None:
    for name in SUBMODULES:
        module = importlib.import_module(f"provena_like.auth.{name}")
        for public in module.__all__:
            assert getattr(auth, public) is getattr(module, public), public
