"""Who is calling: the Unix user at the other end of a local TCP connection.

On a server shared by a room, every learner's service listens on the same 127.0.0.1, so the
address says nothing about who calls. Linux lists each TCP socket with the user that owns it
(``/proc/net/tcp``, ``/proc/net/tcp6``); the caller's socket is the one whose local end is the
request's client address and whose remote end is the service's. A learner's kernel, terminal
and Jupyter server (whose proxy the hub has authenticated) are that learner's processes;
another learner's are not. This is the ident/peer check of PostgreSQL's local connections,
for TCP.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def endpoint(field: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ``("127.0.0.1", 8080)``: the kernel writes each 32-bit word of the
    address in the machine's byte order (little-endian on x86 and arm64); an IPv4 address mapped
    into IPv6 reads as the IPv4 one."""
    address, port = field.split(":")
    raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
    ip = ipaddress.ip_address(raw)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def uid_of_peer(client: tuple[str, int], server: tuple[str, int], tables=TABLES) -> int | None:
    """The uid owning the socket at ``client`` connected to ``server``; None when no table
    lists it (the connection came from another machine, or this is not Linux)."""
    try:
        client, server = _normal(client), _normal(server)
    except (TypeError, ValueError):   # no address, or not an IP one (a Unix socket, a test client)
        return None
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and endpoint(fields[1]) == client and endpoint(fields[2]) == server:
                return int(fields[7])
    return None


def _normal(end) -> tuple[str, int]:
    host, port = end[0], end[1]
    ip = ipaddress.ip_address(host)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port)


def owner_only_wsgi(app, owner: int | None = None):
    """A WSGI app (TensorBoard's) that answers 403 to any caller but ``owner`` (this process's user)."""
    owner = os.getuid() if owner is None else owner

    def guarded(environ, start_response):
        client = (environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT"))
        if uid_of_peer(client, (environ.get("SERVER_NAME"), environ.get("SERVER_PORT"))) != owner:
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"this TensorBoard answers only the user who started it\n"]
        return app(environ, start_response)
    return guarded
