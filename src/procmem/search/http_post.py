"""One JSON POST over stdlib HTTP, for the OpenAI-compatible endpoints procmem can call.

No retries, no third-party client: the embedder and the reranker send one small
request each and turn every failure into their own error from the error tree.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ..core.errors import ProcmemError

__all__ = ["post_json"]


def post_json(url: str, payload: Any, *, api_key: str | None, timeout_s: float,
              fail: Callable[[str], ProcmemError]) -> Any:
    """POST ``payload`` as JSON to ``url`` and return the parsed JSON answer.

    Args:
        url: ``http://`` or ``https://`` URL.
        payload: A JSON-serializable body.
        api_key: Sent as ``Authorization: Bearer ...`` when given.
        timeout_s: Request timeout in seconds.
        fail: Builds the error to raise from a one-line reason.

    Raises:
        ProcmemError: ``fail(reason)`` on an HTTP error status, a network failure or
            timeout, or a body that is not JSON.
    """
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read(300).decode("utf-8", "replace").strip()
        raise fail(f"HTTP {err.code} from {url}: {detail or err.reason}") from err
    except (OSError, http.client.HTTPException) as err:  # URLError, timeout, reset
        raise fail(f"cannot reach {url}: {err}") from err
    try:
        return json.loads(raw)
    except ValueError as err:
        raise fail(f"unexpected response from {url}: {raw[:200]!r}") from err
