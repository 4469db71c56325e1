"""Optional: a title and description written by an OpenAI-compatible chat endpoint
(``TRANSMUTE_LLM_URL``, ``TRANSMUTE_LLM_MODEL``, ``TRANSMUTE_LLM_API_KEY``).

The offline summary is always computed first; any failure here (unreachable, slow, non-JSON,
missing fields) keeps it, so the endpoint can only improve a result, never fail a task.
"""

from __future__ import annotations

import json
import logging
from typing import Final

import httpx

from taskkit.config import Settings

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_CHARS: Final = 12_000
_SYSTEM: Final = (
    "You write metadata for media. Reply with a JSON object only: "
    '{"title": "<at most 70 characters>", "description": "<2 or 3 sentences>"}, '
    "in the language of the transcript, using only facts from it."
)


async def title_and_description(transcript: str, settings: Settings) -> tuple[str, str] | None:
    """(title, description) from the endpoint, or None when it is not configured or fails."""
    if not settings.llm_url:
        return None
    headers = (
        {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"} if settings.llm_api_key else {}
    )
    body = {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": transcript[:MAX_TRANSCRIPT_CHARS]},
        ],
    }
    try:
        async with httpx.AsyncClient(timeout=settings.llm_timeout_seconds, trust_env=False) as client:
            response = await client.post(settings.llm_url, json=body, headers=headers)
            response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        answer = json.loads(content)
        title, description = str(answer["title"]).strip()[:70], str(answer["description"]).strip()
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("llm summary failed; keeping the offline one", extra={"error": repr(exc)})
        return None
    return (title, description) if title and description else None
