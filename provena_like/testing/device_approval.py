"""Approve (or deny) a device code the way a user in a browser would: over HTTP, via the form.

Used by the tests and the local stack to complete the device flow without a human:

```python
async def prompt(p: DevicePrompt) -> None:
    await approve_device_code(http, p.verification_uri_complete, "alice", "secret-pw")
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from provena_like._core.errors import DeviceFlowError

__all__ = ["approve_device_code"]


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    has_password: bool = False


class _FormParser(HTMLParser):
    """Collects forms, their inputs and submit buttons, and the page's alert message."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.alert: list[str] = []
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            form = self.forms[-1]
            form.fields[a["name"]] = a.get("value", "")
            form.has_password = form.has_password or a.get("type") == "password"
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))
        elif a.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:  # noqa: ARG002
        """Any closing tag ends the alert text."""
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        """Keep the alert's text for error messages."""
        if self._in_alert:
            self.alert.append(data)


def _parse(text: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(text)
    parser.close()
    return parser


async def approve_device_code(
    http: httpx.AsyncClient,
    verification_uri_complete: str,
    username: str,
    password: str,
    *,
    approve: bool = True,
) -> None:
    """Open the verification page, sign in as ``username`` and press Approve (or Deny).

    Args:
        http: the client to browse with (its cookies are not touched).
        verification_uri_complete: the URL from the device authorization response.
        username: who approves.
        password: their password.
        approve: ``False`` presses Deny instead.

    Raises:
        DeviceFlowError: the page refused (unknown or expired code, wrong password, ...);
            the message is the page's own explanation.

    Example:
        ```python
        await approve_device_code(http, auth.verification_uri_complete, "admin", password)
        ```
    """
    page = await http.get(verification_uri_complete)
    parsed = _parse(page.text)
    if page.status_code != 200:
        raise DeviceFlowError(_explain(page, parsed))
    forms = [f for f in parsed.forms if f.method == "post" and f.has_password]
    if not forms:
        raise DeviceFlowError("the verification page has no sign-in form")
    form = forms[0]
    choice = "approve" if approve else "deny"
    button = next(((n, v) for n, v in form.buttons if v == choice), None)
    if button is None:
        raise DeviceFlowError(f"the sign-in form has no {choice!r} button")
    data = {**form.fields, "username": username, "password": password, button[0]: button[1]}
    headers = {}
    cookie = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
    if cookie:  # the browser would send back what the page set
        headers["Cookie"] = cookie
    url = urljoin(str(page.url), form.action)
    answer = await http.post(url, data=data, headers=headers)
    if answer.status_code != 200:
        raise DeviceFlowError(_explain(answer, _parse(answer.text)))


def _explain(response: httpx.Response, parsed: _FormParser) -> str:
    message = " ".join("".join(parsed.alert).split()) or "no explanation"
    return f"the verification page answered {response.status_code}: {message}"
