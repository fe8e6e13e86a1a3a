"""``procmem keys create|list|revoke``, and the security options of the HTTP servers.

Registers on :data:`procmem.cli.app.main` when imported (the package :mod:`procmem.cli`
imports it).

Invariants:
    * Keys live in the memory file's main store (``--db``) for every tenant
      (:class:`procmem.security.keys.KeyRing`); a key's text is printed once, by ``create``
      (or by a fresh ``serve``), and is never stored or shown again.
    * ``--no-auth`` is refused unless the server binds a loopback address, and
      then says loudly on stderr that anyone on this machine can use the memory.
    * :func:`ensure_key` makes a key only when the memory has no live key at all,
      and prints two lines: the key, and how to use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..core.errors import UsageError
from .app import DEFAULT_TENANT, SCOPES, emit, json_option, main

if TYPE_CHECKING:
    from ..security.keys import ApiKey, KeyRing

__all__ = ["ensure_key", "keys", "security_options", "warn_no_auth"]

F = TypeVar("F", bound=Callable[..., Any])


def _record(key: ApiKey) -> dict[str, Any]:
    return key.model_dump(mode="json")


def _keyring(ctx: click.Context) -> KeyRing:
    from ..security.keys import KeyRing
    from ..store import open_store

    store = open_store(ctx.obj["db"])
    ctx.call_on_close(store.close)
    return KeyRing(store)


@main.group()
def keys() -> None:
    """API keys of the REST and MCP HTTP servers (stored hashed, one tenant each)."""


@keys.command("create")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True, metavar="NAME",
              help="The tenant whose data the key reaches.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES),
              help="A scope (repeat; default: read, write, run).")
@click.option("--name", default="", metavar="TEXT", help="What the key is for.")
@json_option
@click.pass_context
def create(ctx: click.Context, tenant: str, scopes: tuple[str, ...], name: str,
           as_json: bool) -> None:
    """Create a key; its text is printed once and cannot be shown again."""
    record, text = _keyring(ctx).create(tenant=tenant, scopes=scopes or ("read", "write", "run"),
                                        name=name)
    if as_json:
        emit({"key": text, **_record(record)})
        return
    click.echo(text)
    click.echo(f"key {record.id}: tenant {record.tenant}, scopes {', '.join(record.scopes)} "
               "(shown once: keep it; send it as Authorization: Bearer <key>)", err=True)


@keys.command("list")
@click.option("--tenant", default=None, metavar="NAME", help="Only this tenant's keys.")
@json_option
@click.pass_context
def list_keys(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List keys (ids, tenants, scopes, dates; never secrets)."""
    found = _keyring(ctx).list(tenant)
    if as_json:
        emit([_record(k) for k in found])
        return
    if not found:
        click.echo("no API keys (procmem keys create makes one)")
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        click.echo(f"{k.id}  {k.tenant:<16} {','.join(k.scopes):<20} {state:<22} {k.name}")


@keys.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke a key by its id (see keys list); idempotent."""
    record = _keyring(ctx).revoke(key_id)
    if as_json:
        emit(_record(record))
        return
    click.echo(f"revoked key {record.id} (tenant {record.tenant})")


# ------------------------------------------------------------------ servers


def security_options(fn: F) -> F:
    """The security options of ``serve`` and ``mcp --http``."""
    options = [
        click.option("--no-auth", "no_auth", is_flag=True,
                     help="Serve without API keys: only on 127.0.0.1, and anyone on this "
                          "machine can then read, change and run this memory."),
        click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
                     help="Another Host name to answer to, e.g. a reverse proxy's (repeat; "
                          "'*': any). Default: localhost names and --host."),
        click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
                     help="A browser origin (https://app.example) to admit (repeat)."),
        click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
                     help="An origin that gets CORS headers (repeat; none by default)."),
        click.option("--max-body-mb", default=16.0, show_default=True,
                     type=click.FloatRange(min=0.001), help="Largest request body (MiB)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def warn_no_auth(host: str) -> None:
    """Refuse ``--no-auth`` off loopback; else warn loudly on stderr."""
    from ..rest.security import LOOPBACK

    if host not in LOOPBACK:
        raise UsageError(f"--no-auth is only allowed with --host 127.0.0.1 (got {host!r})")
    click.secho("WARNING: --no-auth: authentication is OFF. Any program or user on this "
                "machine can read, change and run everything in this memory. Use it only "
                "for local experiments.", fg="red", bold=True, err=True)


def ensure_key(location: str, usage: Callable[[str], str]) -> None:
    """When the memory at ``location`` has no live key, create one and print how to use it.

    Prints two lines (like Jupyter's token): the key, and ``usage(key)``.
    """
    from ..security.keys import KeyRing
    from ..store import open_store

    store = open_store(location)
    try:
        ring = KeyRing(store)
        if any(not k.revoked for k in ring.list()):
            return
        record, text = ring.create(tenant=DEFAULT_TENANT, scopes=SCOPES,
                                   name="created by the first procmem serve")
    finally:
        store.close()
    click.echo(f"procmem: created API key {text} (tenant {record.tenant}, every scope; "
               "shown once, keep it; more: procmem keys create)")
    click.echo(f"procmem: use it as:  {usage(text)}")
