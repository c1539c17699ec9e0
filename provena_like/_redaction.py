"""Keeping secrets out of log records and ``repr``: S3 keys, session tokens, signatures.

A leaf module (standard library only) so that every layer may use it: the wire models
(``PresignedURL``), the storage engine and the server.

botocore and aiobotocore log every request they sign at ``DEBUG``: the headers (with
``Authorization`` and ``X-Amz-Security-Token``), the canonical request, the signature, and
the bodies of responses (an STS ``AssumeRole`` answer holds the secret key and the session
token). Turning ``DEBUG`` on to investigate a transfer would copy credentials into log files.

:func:`install_log_redaction` puts a :class:`SecretRedactingFilter` on the loggers of the
libraries the SDK and the server drive (``botocore``, ``aiobotocore``, ``aioboto3``,
``boto3``, ``s3transfer``, ``urllib3``, ``aiohttp``, ``httpx``, ``httpcore`` and
``provena_like``) and on all their existing child loggers. A filter on a logger only sees
records logged on that very logger, not those of its children, so the SDK calls it again
whenever it creates S3 clients (libraries create some loggers lazily); it is idempotent and
cheap. No handler is added and no level is changed.

:func:`redact_text` and :func:`redact_url` are the replacements themselves: secret values
become ``***``, names and structure stay readable.

Example:
    ```python
    import logging
    from provena_like._redaction import install_log_redaction, redact_url

    install_log_redaction()
    logging.basicConfig(level=logging.DEBUG)  # botocore's debug output is now safe to keep
    redact_url("https://s3/b/k?X-Amz-Signature=abc&X-Amz-Date=20250101T000000Z")
    # 'https://s3/b/k?X-Amz-Signature=***&X-Amz-Date=20250101T000000Z'
    ```
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SDK_LOGGERS",
    "SecretRedactingFilter",
    "install_log_redaction",
    "redact_text",
    "redact_url",
]

REDACTED = "***"
"""What a secret value is replaced with."""

SDK_LOGGERS = (
    "botocore",
    "aiobotocore",
    "aioboto3",
    "boto3",
    "s3transfer",
    "urllib3",
    "aiohttp",
    "httpx",
    "httpcore",
    "provena_like",
)
"""The logger hierarchies :func:`install_log_redaction` covers."""

# Names whose values are secrets, in headers, query strings, dict reprs, JSON and
# ``name: value`` lines (botocore's canonical request uses lower-case ``name:value``).
_SECRET_NAMES = (
    r"x-amz-security-token",
    r"x-amz-signature",
    r"signature",
    r"sessiontoken",
    r"session[_-]token",
    r"aws[_-]session[_-]token",
    r"secretaccesskey",
    r"secret[_-]access[_-]key",
    r"aws[_-]secret[_-]access[_-]key",
    r"secret[_-]key",
    r"client[_-]secret",
    r"access[_-]token",
    r"refresh[_-]token",
    r"id[_-]token",
    r"password",
)
_NAME = "|".join(_SECRET_NAMES)
# name, optional closing quote, a separator (: = =>), optional b' / quote, then the value.
_KEY_VALUE = re.compile(
    rf"""(?P<head>(?<![A-Za-z0-9_-])(?:{_NAME})["']?\s*(?:=>|[:=])\s*b?["']?)"""
    r"""(?P<value>[^\s"',&;}<>\]\)]+)""",
    re.IGNORECASE,
)
# The whole value of an Authorization header (scheme, credential scope, signature).
_AUTHORIZATION = re.compile(
    r"""(?P<head>(?<![A-Za-z0-9_-])authorization["']?\s*[:=]\s*b?["']?)(?P<value>[^"'\r\n]+)""",
    re.IGNORECASE,
)
# XML elements of STS answers: <SecretAccessKey>…</SecretAccessKey>, <SessionToken>…
_XML = re.compile(
    r"<(?P<tag>SecretAccessKey|SessionToken|Signature)>[^<]*</(?P=tag)>", re.IGNORECASE
)
_BEARER = re.compile(r"\b(?P<head>Bearer\s+)(?P<value>[A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)

_QUERY_SECRETS = frozenset(
    {"x-amz-signature", "x-amz-security-token", "signature", "x-amz-credential"}
)


def _keep_head(match: re.Match[str]) -> str:
    return match.group("head") + REDACTED


def redact_text(text: str) -> str:
    """Replace secret values in ``text`` (headers, URLs, dict reprs, JSON, XML) with ``***``.

    Args:
        text: Any text, e.g. a formatted log message.

    Returns:
        The text with the values of ``Authorization``, ``X-Amz-Security-Token``,
        ``X-Amz-Signature``, secret keys, session tokens, OAuth tokens and passwords
        replaced.

    Example:
        ```python
        redact_text("{'X-Amz-Security-Token': b'IQo...'}")  # "{'X-Amz-Security-Token': b'***'}"
        ```
    """
    text = _AUTHORIZATION.sub(_keep_head, text)
    text = _XML.sub(lambda m: f"<{m.group('tag')}>{REDACTED}</{m.group('tag')}>", text)
    text = _KEY_VALUE.sub(_keep_head, text)
    return _BEARER.sub(_keep_head, text)


def redact_url(url: str) -> str:
    """``url`` with the signing parameters of its query string replaced by ``***``.

    ``X-Amz-Signature``, ``X-Amz-Security-Token`` and ``X-Amz-Credential`` (SigV4) and
    ``Signature`` (SigV2) are hidden; the path, expiry and other parameters stay.

    Args:
        url: A (presigned) URL.

    Returns:
        The URL, safe to show or log.
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, REDACTED if name.lower() in _QUERY_SECRETS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/:")))


class SecretRedactingFilter(logging.Filter):
    """A logging filter that rewrites records so that their message holds no secrets.

    The record is formatted once (``msg % args``); when anything was redacted, ``msg``
    becomes the redacted text and ``args`` is emptied. Records are never dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place.

        Args:
            record: The record being logged.

        Returns:
            Always ``True``.
        """
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = SecretRedactingFilter()


def _has_filter(logger: logging.Logger) -> bool:
    return any(isinstance(f, SecretRedactingFilter) for f in logger.filters)


def install_log_redaction(prefixes: tuple[str, ...] = SDK_LOGGERS) -> None:
    """Put the redacting filter on the ``prefixes`` loggers and every existing child.

    Idempotent. Call it again after importing a library that creates loggers lazily.

    Args:
        prefixes: Top-level logger names to cover.
    """
    names = set(prefixes)
    manager = logging.Logger.manager
    for name in list(manager.loggerDict):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            names.add(name)
    for name in names:
        logger = logging.getLogger(name)
        if not _has_filter(logger):
            logger.addFilter(_FILTER)
