"""`WebhookTargets`: which webhook URLs and addresses the service may send to.

A webhook URL is refused when it carries credentials, or when its host is, or resolves to, an
address that is not public: loopback, private, link-local (the cloud metadata service at
169.254.169.254 among them), shared, multicast, reserved, unspecified, or an IPv6 unique-local one
(fd00:ec2::254), unless that address lies in a network the admin allowed explicitly. The check runs
when a camera is configured and again on the addresses resolved at each delivery, which then
connects to the address it checked, so that a name re-pointed after configuration (DNS rebinding)
cannot reach an internal address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence

from hazardvision.errors import InvalidWebhook

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
"""host, port -> the addresses a connection may go to."""

_LOCALHOST = ("127.0.0.1", "::1")


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (`socket.getaddrinfo`); `OSError` when it has none."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(entry[4][0]) for entry in found))


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone id says nothing about the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: Address) -> str | None:
    """Why the address is not public; None for a public one."""
    for kind, is_kind in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                          ("a multicast", address.is_multicast), ("an unspecified", address.is_unspecified),
                          ("a private", address.is_private), ("a reserved", address.is_reserved)):
        if is_kind:
            return kind
    return None if address.is_global else "a non-public"


def parse_networks(values: Iterable[str | Network]) -> tuple[Network, ...]:
    """Networks in CIDR notation (`127.0.0.0/8`, `fd00::/8`); `ValueError` for one that is not."""
    return tuple(ipaddress.ip_network(value, strict=False) if isinstance(value, str) else value for value in values)


class WebhookTargets:
    """The rule of where webhooks may go: public addresses, and those of `allowed` networks."""

    def __init__(self, allowed: Sequence[Network] = (), resolver: Resolver = resolve) -> None:
        self.allowed = tuple(allowed)
        self.resolver = resolver

    def refusal(self, address: str) -> str | None:
        """Why a delivery may not go to this address; None when it may."""
        try:
            parsed = _address(address)
        except ValueError:
            return f"{address!r} is not an IP address"
        if any(parsed.version == network.version and parsed in network for network in self.allowed):
            return None
        kind = _kind(parsed)
        if kind is None:
            return None
        return (f"{parsed} is {kind} address; webhooks go to public addresses only, unless an admin allows its "
                "network (setting webhooks.allowed_networks, e.g. HAZARDVISION_WEBHOOKS__ALLOWED_NETWORKS="
                "'[\"10.0.0.0/8\"]')")

    def check_url(self, url: str) -> urllib.parse.SplitResult:
        """The URL's parts, if it is an absolute http(s) URL without credentials, whose host, if an address, may
        be sent to; otherwise an `InvalidWebhook`. No name is resolved (`check_config` does)."""
        try:
            parts = urllib.parse.urlsplit(url)
            _ = parts.port  # raises on a port that is not a number
        except ValueError as error:
            raise InvalidWebhook(f"webhook URL {url!r} cannot be parsed: {error}") from error
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidWebhook(f"webhook URL {url!r} must be an absolute http:// or https:// URL with a host")
        if "@" in parts.netloc:
            raise InvalidWebhook("a webhook URL may not carry credentials (user:password@): the deliveries are "
                                 "signed with webhook_secret, which the receiver checks instead")
        host = parts.hostname
        try:
            literal: str | None = str(_address(host))
        except ValueError:
            literal = None
        if literal is not None and (reason := self.refusal(literal)):
            raise InvalidWebhook(f"webhook URL refused: {reason}")
        return parts

    def check_config(self, url: str) -> None:
        """`check_url`, and the host's addresses as it resolves now: every one must be allowed.

        A name that does not resolve yet is accepted: each delivery resolves and checks it again.
        """
        parts = self.check_url(url)
        host = parts.hostname or ""
        addresses = list(_LOCALHOST) if _is_localhost(host) else []
        with contextlib.suppress(OSError):  # checked at each delivery instead
            addresses += self.resolver(host, port_of(parts))
        for address in addresses:
            if reason := self.refusal(address):
                raise InvalidWebhook(f"webhook URL refused: {host} resolves to {reason}")

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a delivery to `host` connects to: resolved now, each one checked.

        `InvalidWebhook` if any of them may not be sent to (the delivery fails, not retried); `OSError` when
        the name does not resolve (retried).
        """
        found = [*_LOCALHOST] if _is_localhost(host) else self.resolver(host, port)
        if not found:
            raise OSError(f"{host} resolves to no address")
        for address in found:
            if reason := self.refusal(address):
                raise InvalidWebhook(f"delivery refused: {host} resolves to {reason}")
        return found


def _is_localhost(host: str) -> bool:
    # RFC 6761: these names are loopback, whatever a resolver says.
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def port_of(parts: urllib.parse.SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)
