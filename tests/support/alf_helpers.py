"""Helpers for the ALF tests: asserting which part an AlfError names and what it says."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provena_like.alf import AlfError


def assert_alf_error(parse: Callable[[str], object], text: str, part: str, says: str) -> AlfError:
    """``parse(text)`` raises an AlfError naming ``part`` whose message holds ``says``.

    Every such message also says what was expected, and the error is a ``ValueError``.
    """
    with pytest.raises(AlfError) as caught:
        parse(text)
    err = caught.value
    assert err.part == part, str(err)
    assert says in str(err), str(err)
    assert "expected" in str(err)
    assert isinstance(err, ValueError)
    return err
