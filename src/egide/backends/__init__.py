"""Model runtimes behind one :class:`~egide.backends.base.Backend` interface.

Importing this package registers the built-in kinds, the same way an extension would.
"""

from egide.backends import embedded, embedder, fake, upstream  # noqa: F401  (registration)
from egide.backends.base import Backend, Embeddings, Health, backend_class, register

__all__ = ["Backend", "Embeddings", "Health", "backend_class", "register"]
