"""The one place that composes authentication, routing, backends and accounting."""

from egide.gateway.boot import Runtime, build_runtime
from egide.gateway.service import Gateway

__all__ = ["Gateway", "Runtime", "build_runtime"]
