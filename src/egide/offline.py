"""Sovereignty switches: no hub look-ups, no telemetry, from any library.

Applied by the entry point before anything else is imported, so that no library can
phone home. Égide itself opens connections only to configured upstream deployments.
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "LITELLM_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply(environ: dict[str, str] | None = None) -> None:
    target = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        target[key] = value
