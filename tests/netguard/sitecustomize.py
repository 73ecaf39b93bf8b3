"""Loaded by every Python subprocess the tests start (through PYTHONPATH): refuse and
record any connection or name lookup that is not loopback."""

from netguard_hook import install

install()
