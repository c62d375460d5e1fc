"""The one input policy for everything the pipeline fetches: which catalogs and image sources are allowed.

Catalog rows and DAG params are untrusted. A URI is allowed only when its scheme is listed and it
points under an allowed local root, into an allowed bucket (and prefix), or at an allowed host;
HTTP(S) hosts must also resolve to public addresses only (checked again on every connection, so on
every redirect too). A refusal raises :class:`InputRefusedError`, which the steps record like any
other bad image.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from imagesearch import uri as uris
from imagesearch.errors import InputRefusedError
from imagesearch.settings import InputSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
HTTP_SCHEMES = ("http", "https")


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def scheme_of(uri: str) -> str:
    """``file`` for local paths and file:// URIs, else the URI's lower-case scheme."""
    return "file" if uris.local_path(uri) is not None else urlsplit(uri).scheme.lower()


@dataclass(frozen=True)
class InputPolicy:
    schemes: frozenset[str] = frozenset({"file", "gs", "https"})
    local_roots: tuple[Path, ...] = ()
    # (bucket, object-name prefix) pairs; "" allows the whole bucket.
    gs_prefixes: tuple[tuple[str, str], ...] = ()
    # None: any host that resolves to public addresses; else exact names or "*.suffix" patterns.
    hosts: tuple[str, ...] | None = None
    # When set, an HTTP(S) URI must also lie under one of these (scheme, host, port, path prefix).
    url_prefixes: tuple[tuple[str, str, int | None, str], ...] = ()
    # Networks exempt from the private/loopback/link-local refusal (e.g. an intranet image host).
    allowed_networks: tuple[Network, ...] = field(default=())
    max_redirects: int = 3
    deadline_s: float = 10.0
    min_bytes_per_s: float = 16 * 1024

    @classmethod
    def for_images(cls, settings: InputSettings, catalog_uri: str = "") -> InputPolicy:
        """Image sources from settings, plus the catalog's own folder (where its relative image URIs point)."""
        base = cls(
            schemes=frozenset(s.lower() for s in split_list(settings.image_schemes)),
            local_roots=tuple(_root(path) for path in split_list(settings.image_local_roots)),
            gs_prefixes=tuple((bucket, "") for bucket in split_list(settings.image_buckets)),
            hosts=tuple(h.lower() for h in split_list(settings.image_hosts)) or None,
            **_fetch_limits(settings),
        )
        return base.with_source_folder(catalog_uri) if catalog_uri else base

    @classmethod
    def for_catalogs(cls, settings: InputSettings) -> InputPolicy:
        """Catalogs may be read only under ``catalog_prefixes`` (local folders, gs:// or http(s):// prefixes)."""
        roots: list[Path] = []
        gs: list[tuple[str, str]] = []
        urls: list[tuple[str, str, int | None, str]] = []
        for prefix in split_list(settings.catalog_prefixes):
            scheme = scheme_of(prefix)
            if scheme == "file":
                roots.append(_root(str(uris.local_path(prefix))))
            elif scheme == "gs":
                gs.append(uris.split_gs(prefix))
            elif scheme in HTTP_SCHEMES:
                urls.append(normalised_url(prefix))
        schemes = {"file"} if roots else set()
        schemes |= {"gs"} if gs else set()
        schemes |= {scheme for scheme, *_ in urls}
        return cls(
            schemes=frozenset(schemes), local_roots=tuple(roots), gs_prefixes=tuple(gs),
            hosts=tuple(sorted({host for _, host, _, _ in urls})), url_prefixes=tuple(urls), **_fetch_limits(settings),
        )

    def with_source_folder(self, uri: str) -> InputPolicy:
        """This policy, also allowing the folder that holds ``uri`` (the catalog vouches for its neighbours)."""
        scheme = scheme_of(uri)
        if scheme == "file":
            folder = uris.local_path(uri).resolve().parent  # type: ignore[union-attr]
            return replace(self, schemes=self.schemes | {"file"}, local_roots=(*self.local_roots, folder))
        if scheme == "gs":
            bucket, name = uris.split_gs(uri)
            folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
            return replace(self, schemes=self.schemes | {"gs"}, gs_prefixes=(*self.gs_prefixes, (bucket, folder)))
        if scheme in HTTP_SCHEMES and self.hosts is not None:
            return replace(self, hosts=(*self.hosts, (urlsplit(uri).hostname or "").lower()))
        return self

    # --- checks ---------------------------------------------------------------------------------------------
    def check_scheme(self, uri: str) -> str:
        scheme = scheme_of(uri)
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes)) or "none"
            raise InputRefusedError(f"scheme {scheme or '(none)'!r} is not allowed (allowed: {allowed})")
        return scheme

    def check_location(self, uri: str) -> None:
        """The checks that need no network (scheme, local root, bucket), e.g. before reading an object's metadata."""
        try:
            scheme = self.check_scheme(uri)
            if scheme == "file":
                self.confine(uris.local_path(uri))  # type: ignore[arg-type]
            elif scheme == "gs":
                self.check_gs(uri)
        except ValueError as exc:  # a malformed URI
            raise InputRefusedError(f"malformed URI: {exc}") from None

    def confine(self, path: Path) -> Path:
        """``path`` with every symlink and ``..`` resolved, if that lies under an allowed local root."""
        resolved = path.expanduser().resolve()
        if not any(resolved.is_relative_to(root) for root in self.local_roots):
            raise InputRefusedError(f"local path {path} is outside the allowed local roots")
        return resolved

    def check_gs(self, uri: str) -> tuple[str, str]:
        bucket, name = uris.split_gs(uri)
        if not any(bucket == allowed and name.startswith(prefix) for allowed, prefix in self.gs_prefixes):
            raise InputRefusedError(f"gs://{bucket}/{name} is not in an allowed bucket")
        return bucket, name

    def check_url(self, url: str) -> None:
        """Scheme, host and prefix of an HTTP(S) URL (its addresses are checked when connecting)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in HTTP_SCHEMES or scheme not in self.schemes:
            raise InputRefusedError(f"scheme {scheme!r} is not allowed here")
        host = (parts.hostname or "").lower()
        if not host:
            raise InputRefusedError(f"no host in {url}")
        if self.hosts is not None and not any(_host_matches(host, pattern) for pattern in self.hosts):
            raise InputRefusedError(f"host {host} is not an allowed image host")
        if self.url_prefixes:
            scheme, host, port, normalised = normalised_url(url)
            if not any(scheme == s and host == h and port == p and _under(normalised, path)
                       for s, h, p, path in self.url_prefixes):
                raise InputRefusedError(f"{url} is not under an allowed prefix")

    def public_addresses(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, if all are public (or in an allowed network); else refused."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise InputRefusedError(f"cannot resolve host {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not self._allowed_address(address):
                raise InputRefusedError(f"host {host} resolves to {address}, {refused_because(address)}")
        if not addresses:
            raise InputRefusedError(f"host {host} resolves to no address")
        return addresses

    def _allowed_address(self, address: Address) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        return is_public(address) and all(self._allowed_address(inner) for inner in embedded_ipv4(address))


# IPv6 forms that carry an IPv4 address (RFC 6052, 3056, 4380, 4291): each is refused when the address it carries
# would be, so no private or metadata address is reached through a NAT64 gateway, a 6to4 relay or a mapped socket.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Refused whatever they carry: a local-use NAT64 prefix (where the IPv4 address lies depends on the prefix length),
# Teredo (the client address is obfuscated) and the deprecated IPv4-compatible form (::a.b.c.d, also :: and ::1).
ALWAYS_REFUSED = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("2001::/32"),
                  ipaddress.IPv6Network("::/96"))


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 transition form carries (IPv4-mapped, NAT64, 6to4); none for others."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner = [address.ipv4_mapped, address.sixtofour]
    if address in NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [v4 for v4 in inner if v4 is not None]


def is_public(address: Address) -> bool:
    """A global unicast address, not a transition form that is always refused (what it carries is checked apart)."""
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in ALWAYS_REFUSED):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return True  # ::ffff:a.b.c.d is as public as a.b.c.d, which is checked on its own
    return _global_unicast(address)


def _global_unicast(address: Address) -> bool:
    return address.is_global and not address.is_multicast and not getattr(address, "is_site_local", False)


def refused_because(address: Address) -> str:
    inner = ", ".join(str(v4) for v4 in embedded_ipv4(address))
    if inner:
        return f"an IPv6 form of {inner}: a private, loopback, link-local or reserved address is not fetched"
    if _global_unicast(address):
        return "an IPv6 transition form (IPv4-compatible, local-use NAT64 or Teredo) that is never fetched"
    return "a private, loopback or link-local address"


DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def normalised_url(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of an HTTP(S) URL as RFC 3986 compares them: scheme and host in lower case (the
    host in IDNA form), the default port as none, escapes of unreserved characters decoded (``%2e`` is ``.``) and
    the rest upper-cased, ``.`` and ``..`` segments resolved. A path with an encoded ``/`` or ``\\`` (which a
    server may read as a separator) or a raw backslash is refused: it has no single meaning to compare."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputRefusedError(f"host {host!r} is not a valid internationalised domain name") from None
    port = parts.port if parts.port != DEFAULT_PORTS.get(scheme) else None

    def decoded(escape: re.Match[str]) -> str:
        char = chr(int(escape[1], 16))
        return char if char in _UNRESERVED else "%" + escape[1].upper()

    path = _ESCAPE.sub(decoded, parts.path)
    if "%2F" in path or "%5C" in path or "\\" in path:
        raise InputRefusedError(f"{url} has an encoded '/' or a backslash in its path")
    segments: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith(("/.", "/..")) else ""
    return scheme, host, port, "/" + "/".join(segments) + trailing


def _fetch_limits(settings: InputSettings) -> dict[str, object]:
    return {
        "allowed_networks": tuple(ipaddress.ip_network(n, strict=False) for n in split_list(settings.fetch_allowed_networks)),
        "max_redirects": settings.fetch_max_redirects,
        "deadline_s": settings.fetch_timeout_s,
        "min_bytes_per_s": float(settings.fetch_min_bytes_per_s),
    }


def _root(path: str) -> Path:
    return Path(path).expanduser().resolve()


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or not prefix


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


