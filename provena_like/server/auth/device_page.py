"""The HTML of the device approval page: self-contained, no scripts, everything escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;"
    "color:#1d2327}h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}"
    "input{width:100%;padding:.45rem;box-sizing:border-box;font-size:1rem}"
    ".code{font-family:monospace;letter-spacing:.1em}.msg{padding:.6rem;border-radius:4px;"
    "background:#f0f0f1}.error{background:#fcf0f1;color:#8a2424}"
    "button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem;font-size:1rem}"
)


@dataclass(frozen=True)
class ApprovalForm:
    """What the login-and-approve form shows and carries."""

    action: str
    user_code: str
    form_token: str
    client_name: str
    scopes: tuple[str, ...]
    username: str = ""


def format_user_code(code: str) -> str:
    """``ABCDEFGH`` → ``ABCD-EFGH``."""
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def _message(message: str | None, *, error: bool) -> str:
    if not message:
        return ""
    cls = "msg error" if error else "msg"
    return f'<p class="{cls}" role="alert">{escape(message)}</p>'


def code_entry_page(action: str, message: str | None = None) -> str:
    """Ask for the user code (a GET form that reloads the page bound to that code)."""
    body = (
        _message(message, error=message is not None)
        + f'<form method="get" action="{escape(action)}">'
        '<label for="user_code">Code shown on your device</label>'
        '<input id="user_code" name="user_code" class="code" autocomplete="off" '
        'autocapitalize="characters" required placeholder="ABCD-EFGH">'
        '<button type="submit">Continue</button></form>'
    )
    return _page("Connect a device", body)


def approval_page(form: ApprovalForm, message: str | None = None) -> str:
    """The sign-in form that approves or denies one user code."""
    scopes = ", ".join(form.scopes) or "openid"
    body = (
        _message(message, error=message is not None)
        + f"<p>{escape(form.client_name)} asks for access to your account "
        f"(scopes: {escape(scopes)}).</p>"
        "<p>Only continue if the code below is the one shown on your device.</p>"
        f'<form method="post" action="{escape(form.action)}">'
        f'<input type="hidden" name="form_token" value="{escape(form.form_token)}">'
        '<label for="user_code">Code</label>'
        f'<input id="user_code" name="user_code" class="code" readonly '
        f'value="{escape(format_user_code(form.user_code))}">'
        '<label for="username">Username</label>'
        f'<input id="username" name="username" autocomplete="username" required '
        f'value="{escape(form.username)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit" name="action" value="approve">Approve</button>'
        '<button type="submit" name="action" value="deny">Deny</button>'
        "</form>"
    )
    return _page("Approve device sign-in", body)


def result_page(title: str, message: str, *, error: bool = False, retry: str | None = None) -> str:
    """A final page: approved, denied, or why the request can't go on."""
    link = f'<p><a href="{escape(retry)}">Enter a code</a></p>' if retry else ""
    return _page(title, _message(message, error=error) + link)
