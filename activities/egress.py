"""The worker's egress policy: which destinations an outbound request from a stage may reach.

Tenants choose URLs (artifacts, webhooks, Jenkins masters, notification hooks), and a worker sits
inside the network next to things no tenant should reach: the cloud metadata service
(169.254.169.254), the Kubernetes API, databases, the worker's own ports. So by default a request
may only go to *global* addresses; loopback, link-local, private, shared (CGNAT), reserved,
multicast and unspecified addresses are refused unless the operator allow-lists them by host name,
by CIDR, or by URL prefix.

The check runs where the connection is made, not only on the URL: `guarded_client()` gives an
httpx client whose every connection (redirects included) resolves the host, checks every address
and connects to a checked address, so a DNS answer that changes between check and connect (DNS
rebinding) cannot slip through. Tools that open their own connections (`git`) are checked with
`check_url()` before they run; that leaves the rebinding window open for them, which is why git
artifacts should come from allow-listed hosts.

Reuse: `EgressPolicy` is a pydantic model for worker configuration (snake_case like the rest of
gennaker.yaml); call `guarded_client(policy)` for HTTP and `policy.check_url(url)` for anything else.
One policy serves every stage that makes requests (webhook, Jenkins, bake from a URL or git,
notifications, artifacts): the worker configuration's top-level `egress:` section. Prior art:
Spinnaker's orca `webhook.allowedRequests` (a list of `urlPrefix` + `httpMethods` a webhook stage may
call, everything else refused when `webhook.allowedRequestsEnabled`); ours also refuses inward
addresses by default, because a hostname on an allowed-looking prefix can still resolve inward.

URLs in messages and logs go through `redacted_url()`: tenants put tokens in query strings
(`?token=${{ parameters.token }}`), and a message may end up in a log line.
"""

from __future__ import annotations

import ipaddress
import logging
import posixpath
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.exceptions import ApplicationError

EGRESS_DENIED = "EgressDenied"

# httpx logs every request URL at INFO, and tenant URLs carry tokens (a Slack incoming-webhook URL is
# itself the credential): keep the HTTP client's own request logging out of worker logs.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}


class EgressDenied(ApplicationError):
    """A destination the worker's egress policy refuses. Not retryable: retrying cannot change policy."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=EGRESS_DENIED, non_retryable=True)


def address_class(ip: IPAddress) -> str | None:
    """Why an address is restricted ('loopback', 'private', ...), or None for a global address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_class(ip.ipv4_mapped)
    for name, restricted in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if restricted:
            return name
    return None if ip.is_global else "non-global"


@dataclass(frozen=True)
class Destination:
    """A checked destination: the URL as normalised, its host and port, and the addresses allowed."""

    url: str
    scheme: str
    host: str
    port: int | None
    addresses: tuple[str, ...]


def _normalise(url: str) -> tuple[str, str, str, int | None, str]:
    """(normalised URL, scheme, host, port, path) or ValueError. Dot segments are removed so that a
    prefix check cannot be escaped with `/allowed/../elsewhere`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError("it is not an absolute URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in URLs are not allowed (configure them on the worker's account)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("its port is not a number") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme != "file" and not host:
        raise ValueError("it has no host")
    raw_path = parts.path or "/"
    path = posixpath.normpath(raw_path) if raw_path not in ("", "/") else "/"
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if raw_path.endswith("/") and not path.endswith("/"):
        path += "/"
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    normalised = f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")
    return normalised, scheme, host, port, path


class EgressPolicy(BaseModel):
    """Where outbound requests may go. Global addresses are always allowed (for allowed schemes);
    restricted ones only when allow-listed here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_schemes: list[str] = Field(default_factory=lambda: ["https", "http"], description="e.g. https, http, git")
    allow_hosts: list[str] = Field(default_factory=list, description="Host names allowed even if they resolve inward")
    allow_cidrs: list[IPNetwork] = Field(default_factory=list, description="e.g. 10.20.0.0/16, 127.0.0.1/32")
    allow_url_prefixes: list[str] = Field(
        default_factory=list, description="e.g. http://127.0.0.1:8080/charts/ or file:///srv/git/"
    )

    @field_validator("allow_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [h.strip().rstrip(".").lower() for h in value if h.strip()]

    @field_validator("allow_url_prefixes")
    @classmethod
    def _normalised_prefixes(cls, value: list[str]) -> list[str]:
        prefixes = []
        for prefix in value:
            try:
                prefixes.append(_normalise(prefix)[0])
            except ValueError as exc:
                raise ValueError(f"allow_url_prefixes: {prefix!r}: {exc}") from None
        return prefixes

    def _prefix_allows(self, normalised: str) -> bool:
        return any(
            normalised == p or normalised.startswith(p if p.endswith("/") else p + "/") for p in self.allow_url_prefixes
        )

    def _origin_allowed_by_prefix(self, host: str, port: int) -> bool:
        for prefix in self.allow_url_prefixes:
            _, scheme, prefix_host, prefix_port, _ = _normalise(prefix)
            if prefix_host == host and (prefix_port or DEFAULT_PORTS.get(scheme)) == port:
                return True
        return False

    def _address_allowed(self, host: str, ip: IPAddress) -> bool:
        return (
            address_class(ip) is None
            or host in self.allow_hosts
            or any(ip in network for network in self.allow_cidrs if network.version == ip.version)
        )

    def resolve(self, host: str, port: int, url_allowed: bool = False) -> list[str]:
        """The addresses of `host` this policy allows, or EgressDenied naming the refused one.
        `url_allowed`: the URL was allow-listed by prefix, so restricted addresses are fine."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise EgressDenied(f"cannot resolve host {host}: {exc}") from None
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%")[0])
            if url_allowed or self._address_allowed(host, ip):
                allowed.append(text)
                continue
            raise EgressDenied(
                f"the worker's egress policy refuses {host}:{port}: it resolves to {ip}, a {address_class(ip)} "
                "address; an operator can allow it in the worker configuration (egress: allow_hosts, "
                "allow_cidrs or allow_url_prefixes)"
            )
        return allowed

    def allowing_origin(self, url: str) -> EgressPolicy:
        """This policy plus everything under `url` (an operator-configured endpoint such as a Jenkins
        master: the operator chose it, so it may be on an inward address; what it redirects to or
        links to elsewhere is still checked)."""
        return self.model_copy(update={"allow_url_prefixes": [*self.allow_url_prefixes, _normalise(url)[0]]})

    def check_url(self, url: str, schemes: Iterable[str] | None = None) -> Destination:
        """Check a URL before something else (git) connects to it. Raises EgressDenied naming why."""
        try:
            normalised, scheme, host, port, _ = _normalise(url)
        except ValueError as exc:
            raise EgressDenied(f"{_shown(url)} cannot be used: {exc}") from None
        permitted = list(schemes) if schemes is not None else self.allowed_schemes
        prefix_ok = self._prefix_allows(normalised)
        if scheme not in permitted:
            raise EgressDenied(
                f"{_shown(url)}: scheme {scheme} is not allowed here by the worker's egress policy "
                f"(allowed: {', '.join(permitted)})"
            )
        if scheme == "file":
            if not prefix_ok:
                raise EgressDenied(
                    f"{_shown(url)}: local files are refused unless the worker's egress policy lists the "
                    "directory in allow_url_prefixes"
                )
            return Destination(normalised, scheme, host, port, ())
        effective_port = port or DEFAULT_PORTS.get(scheme, 0)
        addresses = self.resolve(host, effective_port, url_allowed=prefix_ok)
        return Destination(normalised, scheme, host, port, tuple(addresses))


def redacted_url(url: str) -> str:
    """A URL as errors and logs may show it: no user:password part, no query or fragment values
    (tokens live there), not too long."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable URL>"
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
    if parts.query:
        parts = parts._replace(query="…")
    if parts.fragment:
        parts = parts._replace(fragment="…")
    shown = parts.geturl()
    return shown if len(shown) <= 200 else shown[:197] + "…"


_shown = redacted_url
_QUERY = re.compile(r"\?[^\s'\"]*")


def redacted_text(text: str) -> str:
    """Free text (an exception message) with anything that looks like a query string cut out."""
    return _QUERY.sub("?…", text)[:500]


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy allows, resolving the host itself (no second lookup)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        lowered = host.rstrip(".").lower()
        addresses = self.policy.resolve(lowered, port, self.policy._origin_allowed_by_prefix(lowered, port))
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last}")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport with a connection pool whose network backend obeys the policy, and a
    URL check (scheme, prefix) on every request, redirects included."""

    def __init__(self, policy: EgressPolicy, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        self.policy = policy
        # httpx.HTTPTransport has no network_backend argument; its pool is swapped for one that has.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=_GuardedBackend(policy),
            max_connections=20,
            max_keepalive_connections=5,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_url(
            str(request.url), schemes=[s for s in self.policy.allowed_schemes if s.startswith("http")]
        )
        return super().handle_request(request)


def guarded_client(
    policy: EgressPolicy,
    *,
    timeout: float = 30.0,
    max_redirects: int = 5,
    verify: bool = True,
    follow_redirects: bool = True,
    **kwargs: Any,
) -> httpx.Client:
    """An httpx client for tenant-chosen URLs: every connection obeys `policy`; no proxies from the
    environment (a proxy would make the connection on our behalf, past the check)."""
    return httpx.Client(
        transport=GuardedTransport(policy, verify=verify),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
        **kwargs,
    )
