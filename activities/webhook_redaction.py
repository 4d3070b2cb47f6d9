"""What a webhook's request carried that may be a credential, cut out of everything the stage keeps.

A server may echo the request: httpbin-like echo endpoints answer 200 with the headers and query they
got, error pages quote the URL, a hostile tenant's own server returns whatever it was sent. Whatever
an activity returns is workflow history (the Temporal UI shows it), so the webhook's reply body, every
status poll's body, the status and progress read from them and the failure messages all go through
`RequestSecrets` first; the status and progress are read from the raw answer, only what is kept is
redacted.

Values are taken in every form they travel or come back in: as written and percent-decoded (query
values, the URL's password), the credentials after an auth scheme (`Bearer <token>`) and what a
`Basic` value decodes to, each also percent-encoded and JSON-escaped (an echoed URL, a JSON body
read as text). Parsed JSON is walked, so a secret is replaced inside keys and string values whatever
escapes the raw text used.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

REDACTED = "***"
# Shorter values are not replaced. Replacing them would shred every answer (a header `X-Retry: 1` or
# `?v=2` would turn each "1" or "2" of the body into ***, and a one-letter value every word), and a
# value of 1-3 characters is no credential worth the name: a few hundred thousand guesses find it.
# 4 keeps short PINs and keys out, at the cost of cutting short everyday words (`?format=json`
# also cuts "json" out of the body), which only costs readability.
MIN_SECRET_LENGTH = 4
_MARKER = re.compile("\x00([0-9]+)\x00")


def _credentials_of_header(value: str) -> list[str]:
    """`Bearer <token>` echoes may carry the token alone; a Basic value decodes to `user:password`."""
    scheme, _, credentials = value.strip().partition(" ")
    if not credentials:
        return []
    found = [credentials.strip()]
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return found
        found += [decoded, decoded.partition(":")[2]]
    return found


def _url_values(url: str) -> list[str]:
    """Query values (decoded and as written) and the password."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    found += [raw.partition("=")[2] for raw in parts.query.split("&")]
    # The egress policy refuses `user:password@` URLs before sending; their messages still quote them.
    return [*found, password or "", unquote(password or "")]


def _forms(value: str) -> list[str]:
    """The value as written, and as it looks percent-encoded (an echoed URL) or JSON-escaped (a JSON
    body too long to parse, kept as text)."""
    return [value, quote(value, safe=""), json.dumps(value)[1:-1]]


class RequestSecrets:
    """The values one request (URL and headers) carried that may be secret, and how to cut them out."""

    def __init__(self, url: str, headers: dict[str, str], *more_urls: str) -> None:
        """`more_urls`: a status poll also carries what the webhook's own URL did (a status URL from
        a Location header or the body is another URL, and the server may echo the first one)."""
        found = [value for each in (url, *more_urls) for value in _url_values(each)]
        for value in headers.values():
            found += [value, *_credentials_of_header(value)]
        forms = {form.strip() for value in found for form in _forms(value.strip())}
        # Longest first, so a value containing a shorter one is replaced whole; ties by text, so the
        # order (and the output) is the same in every worker process.
        self.values = sorted((s for s in forms if len(s) >= MIN_SECRET_LENGTH), key=lambda s: (-len(s), s))

    def text(self, text: str) -> str:
        for secret in self.values:
            text = text.replace(secret, REDACTED)
        return text

    def seal(self, url: str) -> str:
        """A status URL for history: each secret becomes a numbered marker (NUL, which no URL that
        httpx sends contains) that `unseal` turns back on the poll's worker. One pass: a marker is
        never matched again. A URL already holding a NUL is refused by the caller."""
        if not self.values:
            return url
        index = {secret: number for number, secret in enumerate(self.values)}
        pattern = re.compile("|".join(re.escape(secret) for secret in self.values))
        return pattern.sub(lambda m: f"\x00{index[m.group(0)]}\x00", url)

    def unseal(self, sealed: str) -> str:
        """`sealed` with the markers put back; the same request gives the same numbering."""
        return _MARKER.sub(lambda m: self.values[int(m.group(1))] if int(m.group(1)) < len(self.values) else "", sealed)

    @staticmethod
    def shown(sealed: str) -> str:
        """A sealed URL as outputs and messages show it."""
        return _MARKER.sub(REDACTED, sealed)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def document(self, data: Any) -> Any:
        """A copy of parsed JSON with the secrets cut out of every key and string. Iterative: the
        tenant chooses the nesting. Two keys that become equal keep the later value."""
        if not self.values:
            return data
        root = [data]
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            container, key = stack.pop()
            value = container[key]
            if isinstance(value, str):
                container[key] = self.text(value)
            elif isinstance(value, list):
                container[key] = copied = list(value)
                stack.extend((copied, index) for index in range(len(copied)))
            elif isinstance(value, dict):
                container[key] = copied_dict = {self.text(str(k)): v for k, v in value.items()}
                stack.extend((copied_dict, k) for k in copied_dict)
        return root[0]
