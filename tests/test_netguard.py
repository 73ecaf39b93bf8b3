"""The network guard itself: a non-loopback connection is refused and recorded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def test_non_loopback_connect_is_refused_in_this_process() -> None:
    with socket.socket() as sock, pytest.raises(PermissionError, match="netguard"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: documentation range, never routed
    with open(os.environ["EGIDE_NETGUARD_LOG"]) as handle:
        log = handle.read()
    assert "192.0.2.1" in log


def test_non_loopback_connect_is_refused_in_subprocesses() -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
        "except PermissionError:\n"
        "    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused"


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
