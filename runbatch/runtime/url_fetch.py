"""Fetching an http(s) URL that a row names (a vision chat's ``image_url``), within UrlFetchSettings.

The host is resolved once, every address it resolves to is checked, and the connection goes to the
checked address (so a DNS answer that changes between check and connect cannot slip a private
address in); each redirect is checked the same way. Proxies (HTTP(S)_PROXY) are not used: the
check is on the address actually connected to.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urljoin, urlsplit

from runbatch.runtime.settings import UrlFetchSettings

__all__ = ["MAX_BYTES", "UrlRefused", "describe_url", "fetch_url"]

MAX_BYTES = 64 << 20
_MAX_REDIRECTS = 5
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(Exception):
    """The settings do not let the runtime fetch this URL; the message names the setting."""


def describe_url(url: str) -> str:
    """A URL for a message: without user:password, query or fragment (pre-signed URLs carry their
    signature in the query), at most 200 characters; a data URL by its type and size only."""
    if url.startswith("data:"):
        header = url.split(",", 1)[0]
        return f"a data URL ({header[5:]}, {len(url)} characters)"
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url.split("://", 1)[0] + "://..."
        netloc = parts.netloc.rsplit("@", 1)[-1]
        url = f"{parts.scheme}://{netloc}{parts.path}"
    return url if len(url) <= 200 else url[:200] + "..."


def _kind(address: _Address) -> str | None:
    """What makes an address not public (None: it is public)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, test in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a private", address.is_private),
        ("a multicast", address.is_multicast),
        ("a reserved", not address.is_global),
    ):
        if test:
            return kind
    return None


def _allowed(settings: UrlFetchSettings) -> tuple[set[str], list[_Network]]:
    hosts: set[str] = set()
    networks: list[_Network] = []
    for entry in (e.strip() for e in settings.file_fetch_urls_allow.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return hosts, networks


def _address(url: str, settings: UrlFetchSettings) -> tuple[str, str, int, str]:
    """(scheme, host, port, checked address) of ``url``, or UrlRefused."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are fetched, not {scheme or 'this'} one")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL names no host")
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"its host {host} does not resolve ({exc.strerror})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    if settings.file_fetch_urls == "public":
        hosts, networks = _allowed(settings)
        if host.lower() not in hosts:
            for address in addresses:
                kind = _kind(address)
                if kind is not None and not any(address in network for network in networks):
                    named = host if host == str(address) else f"{host} ({address})"
                    raise UrlRefused(
                        f"its host {named} is {kind} address, and runtimes fetch only public ones "
                        "(RUNBATCH_FILE_FETCH_URLS=public). Pass the image as a stage path or a data: URL, or "
                        "have the operator list the host in RUNBATCH_FILE_FETCH_URLS_ALLOW on the workers"
                    )
    return scheme, host, port, str(addresses[0])


class _Pinned(http.client.HTTPConnection):
    """A connection to the checked address, whatever the host name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTls(_Pinned):
    default_port = 443

    def connect(self) -> None:
        super().connect()
        # The certificate is checked against the host name, as any https client does.
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def fetch_url(
    url: str, *, timeout: float = 30.0, max_bytes: int = MAX_BYTES, settings: UrlFetchSettings | None = None
) -> bytes:
    """The body of ``url`` (redirects followed). UrlRefused where the settings forbid it; OSError
    (http.client's errors included) where the host cannot be read."""
    settings = settings or UrlFetchSettings()
    if settings.file_fetch_urls == "none":
        raise UrlRefused(
            "fetching URLs is turned off on this runtime (RUNBATCH_FILE_FETCH_URLS=none). Pass the image as a "
            "stage path or a data: URL"
        )
    for _ in range(_MAX_REDIRECTS + 1):
        scheme, host, port, address = _address(url, settings)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = (_PinnedTls if scheme == "https" else _Pinned)(host, port, address, timeout)
        try:
            try:
                connection.request("GET", target, headers={"User-Agent": "runbatch", "Accept": "*/*"})
            except http.client.InvalidURL:
                # Its message would quote the path and query (a pre-signed URL's signature).
                raise OSError(
                    "its path has characters a request cannot carry (spaces, control characters); "
                    "percent-encode them"
                ) from None
            response = connection.getresponse()
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise OSError(f"the server answered HTTP {response.status} {response.reason}")
            body = response.read(max_bytes + 1)
        finally:
            connection.close()
        if len(body) > max_bytes:
            raise OSError(f"it is over {max_bytes >> 20} MiB")
        return body
    raise OSError(f"it redirects more than {_MAX_REDIRECTS} times")
