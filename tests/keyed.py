"""A REST test client that carries an API key (the app requires one by default)."""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient

from procmem.memory import Memory
from procmem.rest.app import create_app
from procmem.security.keys import SCOPES


def rest_client(memory: Memory | str | os.PathLike[str], *, tenant: str = "default",
                scopes: tuple[str, ...] = SCOPES, **options: Any) -> TestClient:
    """A client of ``create_app(memory, **options)`` whose requests carry a fresh key
    of ``tenant`` with ``scopes`` (every scope by default), sent to 127.0.0.1."""
    app = create_app(memory, **options)
    _, key = app.state.tenants.keyring().create(tenant=tenant, scopes=scopes, name="test")
    return TestClient(app, base_url="http://127.0.0.1:8765",
                      headers={"Authorization": f"Bearer {key}"})
