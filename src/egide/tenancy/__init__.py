"""Who is asking: authentication of API keys into a :class:`Principal`."""

from egide.tenancy.auth import Authenticator, Principal, ensure_admin_key

__all__ = ["Authenticator", "Principal", "ensure_admin_key"]
