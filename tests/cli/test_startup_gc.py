"""The console script imports with the cyclic GC paused, and turns it back on for the work."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from provena_like.cli import _startup
from provena_like.cli._startup import imports_without_gc


@pytest.fixture
def gc_on() -> Iterator[None]:
    """The GC on before the test, and as it was after it."""
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


@pytest.fixture
def console(gc_on: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in the console script's process (what the test freezes is unfrozen after it)."""
    monkeypatch.setattr(_startup, "_console_script", False)
    _startup.console_script_starts()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("gc_on")
def test_outside_the_console_script_the_block_leaves_the_gc_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a program that runs the CLI in-process (tests with CliRunner): nothing paused or frozen
    monkeypatch.setattr(_startup, "_console_script", False)
    frozen = gc.get_freeze_count()
    with imports_without_gc():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("console")
def test_the_gc_is_paused_in_the_block_and_on_after_it() -> None:
    with imports_without_gc():
        assert not gc.isenabled()
        built = [object() for _ in range(3)]  # noqa: F841 - something for the freeze to keep
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("console")
def test_a_nested_block_leaves_the_gc_paused_until_the_outer_one_ends() -> None:
    with imports_without_gc():
        with imports_without_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("console")
def test_the_gc_is_on_after_a_block_that_raised() -> None:
    with pytest.raises(ImportError), imports_without_gc():
        raise ImportError("no such module")
    assert gc.isenabled()


@pytest.mark.usefixtures("console")
def test_a_gc_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    with imports_without_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()
