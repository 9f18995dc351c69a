"""Where a webhook may go (SSRF, PROPERTIES 41).

Deployed: only `https://` URLs without userinfo whose host resolves, every address of it, to
global unicast addresses (no private, loopback, link-local (169.254.169.254), CGNAT, ULA,
multicast, reserved, nor IPv4 hidden in IPv6 forms). The local stack's process may also allow
`http://` or `https://` to 127.0.0.1 / localhost / ::1 (loopback only, never anything else).

`resolve` is called at registration and again before every delivery; the sender connects to
the very address it returns (no second resolution), so a DNS answer that changes between the
check and the connection cannot take a request elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cashew.errors import InvalidRequestError

MAX_URL_LENGTH = 2048
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], list[str]]


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


resolver: Resolver = _system_resolver
"""The name resolver (tests replace it to make a name resolve somewhere else)."""


class UrlRefused(InvalidRequestError):
    """The URL may not be called; `detail` says why (no address is echoed but the host's)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"url {reason}", errors=[{"field": "url", "message": reason}])


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: connect to `address`, speak `scheme`, name `host` (Host, SNI, cert)."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as given
    address: str


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped ::ffff:a.b.c.d, 6to4, NAT64, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = address.packed
    if packed[:12] == bytes(12):  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public(address: IpAddress) -> bool:
    """A global unicast address, and none of the ranges `is_global` lets through."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = _embedded_v4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    elif address in _SHARED:
        return False
    refused = (
        address.is_multicast, address.is_reserved, address.is_private, address.is_loopback,
        address.is_link_local, address.is_unspecified,
    )  # fmt: skip
    return address.is_global and not any(refused)


_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # CGNAT


def _addresses(host: str, port: int) -> list[IpAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        found = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused("host does not resolve") from exc
    if not found:
        raise UrlRefused("host does not resolve")
    addresses = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError as exc:
            raise UrlRefused("host resolves to an address that is not an IP address") from exc
    return addresses


def resolve(url: str, *, allow_loopback: bool) -> Target:
    """The checked target of `url`, or UrlRefused saying which rule it breaks."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UrlRefused("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("is not a valid URL") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("must not carry a user name or password")
    if not host:
        raise UrlRefused("must name a host")
    if parts.fragment:
        raise UrlRefused("must not have a fragment")
    loopback = host in LOOPBACK_NAMES
    if scheme not in ("https", "http"):
        raise UrlRefused("must be https://")
    if scheme == "http" and not (allow_loopback and loopback):
        raise UrlRefused("must be https://")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if loopback and allow_loopback:
        pinned = "::1" if host in ("::1", "[::1]") else "127.0.0.1"
        return Target(scheme, host.strip("[]"), port, path, pinned)
    addresses = _addresses(host, port)
    for address in addresses:
        if not is_public(address):
            raise UrlRefused(
                "must resolve to public addresses only (not private, loopback, link-local, "
                "metadata, shared or reserved ones)"
            )
    return Target(scheme, host.strip("[]"), port, path, str(addresses[0]))
