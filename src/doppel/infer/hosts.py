"""Which names mean "this machine": the one rule behind --host without a key (check_exposure) and
the Host check of a keyless server (server.LoopbackOnly), for `doppel serve` and `doppel blindtest`.

A keyless server listens on loopback, but that alone does not keep web pages out: a page on
evil.example can point its own name at 127.0.0.1 (DNS rebinding) and read the answers, because
to the browser they come from evil.example. The browser still sends `Host: evil.example`, so a
keyless server answers only a Host that is a loopback name or address. Starlette's
TrustedHostMiddleware takes a list of names and `*.domain` patterns: it cannot say 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# a name, an IPv4 address or a bracketed IPv6 one, then a port: nothing else ("[::1]x" is not)
_HOST_CHARS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")


def is_loopback(name: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (an IPv4-mapped ::ffff:127.x too): a name only this machine
    answers. Any other name could resolve anywhere."""
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def host_name(header: str | None) -> str | None:
    """The name or address in a Host header, without port or brackets ("[::1]:8000" -> "::1");
    None when there is none or it is malformed."""
    if not header or not _HOST_CHARS.fullmatch(header):
        return None
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 - reading it checks the port
    except ValueError:
        return None
    return parts.hostname or None
