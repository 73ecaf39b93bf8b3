"""Who is asking: authentication of API keys into a :class:`Caller`, and the
administration of organisations, users, keys and quotas."""

from egide.tenancy.auth import Authenticator, Caller, ensure_admin_key, local_caller

__all__ = ["Authenticator", "Caller", "ensure_admin_key", "local_caller"]
