"""The SSRF guard every outbound call goes through (Slack, subscriber webhooks).

A subscriber URL is written by a team, so it may name anything: the cloud metadata service
(169.254.169.254), the database's admin port on localhost, an internal host. Three checks:

- the URL must be http(s), and a host given as an address literal is checked before the request;
- a host name is checked where it is resolved, at connect time (:class:`GuardedResolver`), so a
  name that resolves to a public address when checked and a private one when used (DNS rebinding)
  is still refused: the addresses connected to are exactly the ones checked;
- redirects are never followed (a public URL answering ``302 Location: http://127.0.0.1/`` gets
  nowhere); a 3xx is a failed delivery.

Refused: every address that is not globally routable (loopback, private, link-local, shared,
reserved, unspecified) and multicast, unless inside a CIDR of ``TESSERA_OUTBOUND_ALLOW``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(aiohttp.ClientConnectionError):
    """The guard refused the destination: retrying will not help (a permanent delivery failure)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound calls may reach."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> OutboundPolicy:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return None
        if ip.is_multicast:
            return f"{ip} is a multicast address"
        if not ip.is_global:
            kind = (
                "loopback" if ip.is_loopback else "link-local" if ip.is_link_local
                else "unspecified" if ip.is_unspecified else "private or reserved"
            )
            return f"{ip} is a {kind} address (allow it with TESSERA_OUTBOUND_ALLOW if this is intended)"
        return None

    def check_url(self, url: str | URL) -> URL:
        """The URL, when it is one an outbound call may be sent to; else :class:`OutboundRefused`."""
        parsed = URL(url) if isinstance(url, str) else url
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise OutboundRefused(f"{str(parsed)[:200]!r} is not an http(s) URL with a host")
        if parsed.user or parsed.password:
            raise OutboundRefused("a URL with credentials in it is refused; use the subscription's secret")
        host = parsed.host.strip("[]")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return parsed  # a name: checked where it is resolved, at connect time
        problem = self.refusal(host)
        if problem is not None:
            raise OutboundRefused(f"refused to call {host}: {problem}")
        return parsed


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops every address the policy refuses;
    when none is left the connection fails with :class:`OutboundRefused`."""

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self.policy.refusal(r["host"]) is None]
        if not allowed:
            reasons = "; ".join(sorted({self.policy.refusal(r["host"]) or "" for r in results}))
            raise OutboundRefused(f"refused to call {host}: {reasons or 'it resolves to no address'}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(policy: OutboundPolicy, *, timeout: float = 10.0, resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """A client session whose every connection is checked by :class:`GuardedResolver`."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy, resolver), limit=32, use_dns_cache=False)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), headers={"User-Agent": "Tessera"}
    )


async def guarded_post(
    session: aiohttp.ClientSession, policy: OutboundPolicy, url: str, *, data: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """POST ``data``; never follows a redirect. Returns status, headers and at most 64 KB of body."""
    checked = policy.check_url(url)
    async with session.post(checked, data=data, headers=headers, allow_redirects=False) as response:
        body = await response.content.read(64 * 1024)
        return response.status, dict(response.headers), body


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta form; an HTTP date is not honoured beyond the back-off)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
