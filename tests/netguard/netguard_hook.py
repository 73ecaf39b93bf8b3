"""An audit hook that blocks every socket connection to a non-loopback address.

Each refused attempt is appended to the file named by ``$EGIDE_NETGUARD_LOG`` (one
line: pid, event, address) *before* the connection could happen, and the call raises
``PermissionError``. The test session fails if that file is not empty at the end.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _record(event: str, target: object) -> None:
    path = os.environ.get("EGIDE_NETGUARD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {event} {target!r}\n")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        sock, address = args[0], args[1]
        family = getattr(sock, "family", None)
        inet = family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
        if inet and not is_loopback(address[0]):  # type: ignore[index]
            _record(event, address)
            raise PermissionError(f"netguard: connection to {address!r} refused")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if host is not None and not is_loopback(host):
            _record(event, host)
            raise PermissionError(f"netguard: name lookup of {host!r} refused")
    elif event in ("socket.sendto", "socket.sendmsg"):
        address = args[-1] if args else None
        if isinstance(address, tuple) and address and not is_loopback(address[0]):
            _record(event, address)
            raise PermissionError(f"netguard: datagram to {address!r} refused")


def install() -> None:
    if not getattr(sys, "_egide_netguard", False):
        sys.addaudithook(_hook)
        sys._egide_netguard = True  # type: ignore[attr-defined]
