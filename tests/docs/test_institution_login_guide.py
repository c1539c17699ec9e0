"""The trusted-issuer files of the guide 'Using your institution's login' are valid settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provena_like.cli.serve import load_trusted_issuers

GUIDE = Path(__file__).parents[2] / "docs" / "guides" / "institution-login.md"
FILES = re.findall(r"```json\n(\[.*?\])\n```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_guide_has_its_files() -> None:
    assert len(FILES) == 3  # Keycloak, a generic provider, opaque tokens


@pytest.mark.parametrize("text", FILES, ids=["keycloak", "generic", "opaque"])
def test_a_file_of_the_guide_is_read(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "issuers.json"
    file.write_text(text)
    issuers = load_trusted_issuers(file)
    assert issuers
    for issuer in issuers:
        if issuer.introspection is not None:
            assert issuer.introspection.client_secret_env is not None
            monkeypatch.setenv(issuer.introspection.client_secret_env, "s3cret")
            assert issuer.introspection.secret().get_secret_value() == "s3cret"
