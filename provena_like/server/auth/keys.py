"""Server-side symmetric keys of the auth service (kept beside the signing key, mode 0600).

* ``seal``/``unseal`` encrypt a value (JWE, ``dir`` + A256GCM) so that an idempotent replay
  of "create client" can return the client secret again without the database ever holding it
  in the clear.
* ``form_token`` binds the device approval form to a browser cookie and a user code
  (a signed double-submit token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from joserfc import jwe
from joserfc.jwk import OctKey

from provena_like._private_files import write_private_file

_FILE = "auth-keys.json"


def _load_or_create(path: Path) -> dict[str, str]:
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {
        "seal": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "form": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    write_private_file(path, json.dumps(data).encode())
    return data


class AuthKeys:
    """The auth service's symmetric keys."""

    def __init__(self, seal_key: bytes, form_key: bytes) -> None:
        self._seal = OctKey.import_key(seal_key)
        self._form = form_key

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> AuthKeys:
        """Load the keys of ``data_dir``, creating them on first use (blocking file I/O)."""
        data = _load_or_create(data_dir / _FILE)
        return cls(base64.urlsafe_b64decode(data["seal"]), base64.urlsafe_b64decode(data["form"]))

    def __repr__(self) -> str:
        return "AuthKeys(<redacted>)"

    def seal(self, value: str) -> str:
        """Encrypt ``value`` into a compact JWE.

        Example:
            ```python
            sealed = keys.seal(secret)  # safe to store
            assert keys.unseal(sealed) == secret
            ```
        """
        return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, value.encode(), self._seal)

    def unseal(self, sealed: str) -> str:
        """Decrypt a value made by :meth:`seal`."""
        plaintext = jwe.decrypt_compact(sealed, self._seal).plaintext
        return (plaintext or b"").decode()

    def form_token(self, nonce: str, user_code: str) -> str:
        """The hidden form token for a browser ``nonce`` (cookie) and a normalised user code.

        Example:
            ```python
            token = keys.form_token(cookie_nonce, "ABCDEFGH")
            ```
        """
        mac = hmac.new(self._form, f"{nonce}\x00{user_code}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def check_form_token(self, token: str, nonce: str, user_code: str) -> bool:
        """Constant-time check of a token made by :meth:`form_token`."""
        return hmac.compare_digest(token, self.form_token(nonce, user_code))
