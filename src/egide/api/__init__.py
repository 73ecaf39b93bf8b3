"""HTTP entry point: the OpenAI/Mistral-compatible API (``create_app(settings)``)."""

from egide.api.app import create_app

__all__ = ["create_app"]
