"""The links to a check run's page (``/checks/{id}``, drawn by :mod:`app.web.proposals`).

The check run's ``details_url`` points there, and so do the comment's links when the comment had to
be shortened. Pull requests are usually in private repositories, so the id in the link carries a signature
(``<check run id>.<hmac>`` keyed by the webhook secret): knowing a check run's number is not
enough to read its report. Without a webhook secret (local use) the bare number is accepted.
"""

from __future__ import annotations

import hashlib
import hmac


def page_id(check_run_id: int, secret: str | None) -> str:
    """The id used in links: the check run's number, signed when a secret is configured."""
    if not secret:
        return str(check_run_id)
    return f"{check_run_id}.{_signature(check_run_id, secret)}"


def parse_page_id(text: str, secret: str | None) -> int | None:
    """The check run number a link names, or None when it is malformed or its signature is wrong."""
    number, _, signature = text.partition(".")
    if not (number.isascii() and number.isdigit()):  # "١٠٠٥" is digits to str.isdigit and int()
        return None
    check_run_id = int(number)
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text (a 500 for a guessed link).
    if secret and not hmac.compare_digest(signature.encode(), _signature(check_run_id, secret).encode()):
        return None
    return check_run_id


def web_url(api_url: str) -> str:
    """GitHub's web address for an API address: github.com, or a GitHub Enterprise Server host."""
    api_url = api_url.rstrip("/")
    if api_url == "https://api.github.com":
        return "https://github.com"
    return api_url.removesuffix("/api/v3")


def _signature(check_run_id: int, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"tessera-check:{check_run_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:20]
