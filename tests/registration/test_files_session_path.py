"""The session part of the local paths must be the session's record: 422 naming the part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Unprocessable
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    file,
    listed,
    make_lab,
    make_subject,
    post_session,
    register,
)
from tests.support.registration_sdk import SdkVocabulary, write_file
from tests.support.users import User

pytestmark = pytest.mark.anyio

DAY = "2026-12-06"


async def test_a_session_path_that_is_not_the_sessions_is_refused_naming_the_part(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    subject = await make_subject(client, lab)
    nickname = subject["record"]["nickname"]
    r = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
    assert r.status_code == 201, r.text
    ses = r.json()["id"]
    files = [file(f"alf/{vocabulary.name()}", "a")]
    wrong = {
        "lab": f"otherlab/Subjects/{nickname}/{DAY}/001",
        "subject": f"{lab.name}/Subjects/{nickname}x/{DAY}/001",
        "date": f"{lab.name}/Subjects/{nickname}/2026-12-07/001",
        "number": f"{nickname}/{DAY}/002",
    }
    for part, session_path in wrong.items():
        refused = await register(client, lab.member, ses, files, session_path=session_path)
        assert refused.status_code == 422, refused.text
        (detail,) = refused.json()["error"]["details"]
        assert (detail["field"], detail["type"], detail["part"]) == (
            "session_path",
            "session_mismatch",
            part,
        )
        assert session_path in detail["message"]
    bad = await register(client, lab.member, ses, files, session_path="not/a/session")
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["details"][0]["type"] == "invalid_alf_path"
    assert await listed(client, lab.member, session=ses) == []
    # the lab compares like lab names (case-insensitively); no lab folder, no lab to check;
    # the number's zero-padding is normalised
    for session_path in (
        f"{lab.name.upper()}/Subjects/{nickname}/{DAY}/001",
        f"{nickname}/{DAY}/1",
    ):
        ok = await register(client, lab.member, ses, files, session_path=session_path)
        assert ok.status_code == 201, ok.text


async def test_files_in_a_folder_of_another_lab_than_the_sessions_fail_naming_the_lab(
    client: httpx.AsyncClient,
    connect: Callable[[User], ProvenaClient],
    new_user: Callable[..., User],
    lab: Lab,
    vocab: SdkVocabulary,
    tmp_path: Path,
) -> None:
    # the subject is the lab's; its session was run (and recorded) by another lab
    other = await make_lab(client, new_user)
    both = new_user("both", groups=(lab.group, other.group))
    subject = await make_subject(client, lab)
    nickname = subject["record"]["nickname"]
    body = {"subject": subject["id"], "date": DAY, "lab": other.id}
    r = await post_session(client, both, body)
    assert r.status_code == 201, r.text
    # the local folder says the subject's lab
    folder = tmp_path / lab.name / "Subjects" / nickname / DAY / "001"
    path = write_file(folder / "alf" / vocab.name(0), b"zero")
    async with connect(both) as pv:
        pv.registration.cache_dir = tmp_path / "cache"
        result = await pv.registration.register_files([path])
    (failed,) = result.failed
    assert failed.path == path
    assert isinstance(failed.error, Unprocessable)
    (detail,) = failed.error.details or []
    assert (detail["field"], detail["part"]) == ("session_path", "lab")
    assert other.name in detail["message"]
