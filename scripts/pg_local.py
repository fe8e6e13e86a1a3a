"""A throwaway local PostgreSQL 16 + pgvector for tests and CI (standard library only).

Usage:

    python scripts/pg_local.py start  [--dir DIR] [--port N]   # init once, start, print the URL
    python scripts/pg_local.py url    [--dir DIR] [--port N]   # print the URL
    python scripts/pg_local.py status [--dir DIR] [--port N]   # exit 0 running, 3 stopped
    python scripts/pg_local.py stop   [--dir DIR] [--port N] [--purge]

Defaults: port 55433, DIR ``$TMPDIR/procmem-pg-PORT``. ``start`` prints
``postgresql://postgres@127.0.0.1:PORT/postgres`` on stdout (nothing else there),
so ``export PROCMEM_TEST_PG_URL="$(python scripts/pg_local.py start)"`` works.

Where the server comes from: the binaries inside the pip package ``pgserver``
(``pgserver/pginstall/bin``, found with importlib without importing the package;
``--bin DIR`` overrides). They are PostgreSQL 16 with pgvector 0.6.2 bundled,
which has HNSW indexes. Debian bookworm packages no pgvector, and building
pgvector needs its source from GitHub, which CI and the dev boxes cannot reach;
``pip install pgserver`` reaches PyPI only.

What ``start`` sets up (for tests and CI only, never for data you keep):
    * ``initdb`` once into ``DIR/data`` (superuser ``postgres``, UTF-8);
    * ``pg_hba.conf``: trust for the Unix socket (in ``DIR``) and for 127.0.0.1,
      nothing else; the server listens on 127.0.0.1 only;
    * ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off: fast, and a
      crash of the machine may lose or corrupt the data;
    * waits until the server accepts connections, then runs
      ``CREATE EXTENSION IF NOT EXISTS vector`` in ``postgres`` and ``template1``
      (so every database created later has it) and checks its version has HNSW.

Root: ``initdb`` refuses to run as root, so as root the script creates (once,
with ``useradd``) the system user ``procmem_pg`` and runs ``initdb``/``pg_ctl``
as that user; ``DIR`` is then owned by it, and every folder above ``DIR`` must
be traversable by it (``/tmp/...`` is; a ``mktemp -d`` folder is not).
As any other user the server runs as that user.

``start`` is idempotent (a running server is left as it is and its URL printed);
``stop`` is a fast shutdown (``pg_ctl stop -m fast``) and is a no-op when
stopped; ``--purge`` then removes ``DIR``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_USER = "procmem_pg"
"""The system user the server runs as when this script runs as root."""
DEFAULT_PORT = 55433
STOPPED = 3
"""Exit code of ``status`` when no server runs (``pg_ctl status``'s own code)."""
MIN_VECTOR = (0, 5, 0)
"""pgvector 0.5.0 added HNSW indexes."""

HBA = """\
# procmem scripts/pg_local.py: a throwaway test server. Trust the local socket
# and 127.0.0.1, nothing else (the server listens on 127.0.0.1 only).
local all all trust
host  all all 127.0.0.1/32 trust
"""


def log(message: str) -> None:
    """Progress for people, on stderr (stdout carries only the URL)."""
    print(f"pg_local: {message}", file=sys.stderr, flush=True)


def die(message: str, status: int = 1) -> None:
    log(f"error: {message}")
    raise SystemExit(status)


def find_bin(override: str | None) -> Path:
    """The folder of ``initdb``, ``pg_ctl``, ``psql`` (pgserver's, or ``override``)."""
    if override:
        folder = Path(override)
    else:
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            die("the pip package 'pgserver' is not installed: pip install pgserver "
                "(it bundles PostgreSQL 16 with pgvector; or pass --bin DIR)")
        folder = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    for tool in ("initdb", "pg_ctl", "psql", "pg_isready"):
        if not (folder / tool).is_file():
            die(f"{folder / tool} not found (a pgserver install without binaries?)")
    return folder


def url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def reachable(path: Path, uid: int) -> bool:
    """Whether every folder above ``path`` can be traversed by ``uid`` (others' x bit,
    or owned by it)."""
    for parent in path.resolve().parents:
        info = parent.stat()
        if not info.st_mode & 0o001 and info.st_uid != uid:
            return False
    return True


class Server:
    """One local cluster: ``dir/data`` (PGDATA), ``dir/log``, the socket in ``dir``."""

    def __init__(self, folder: Path, port: int, bindir: Path) -> None:
        self.dir = folder.resolve()
        self.data = self.dir / "data"
        self.logfile = self.dir / "log"
        self.port = port
        self.bin = bindir
        self.as_root = os.geteuid() == 0

    # ---------------------------------------------------------------- running

    def tool(self, name: str) -> Path:
        """A PostgreSQL program: from pgserver's package, or from the copy in ``DIR`` that
        :meth:`prepare_dir` makes when root's user cannot reach the package."""
        copy = self.dir / "pgserver-copy" / "pgserver" / "pginstall" / "bin"
        return (copy if copy.is_dir() else self.bin) / name

    def run(self, tool: str, *args: str, check: bool = True,
            capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as :data:`PG_USER` when we are root."""
        extra: dict[str, Any] = {}
        if self.as_root:
            entry = pwd.getpwnam(PG_USER)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [],
                     "cwd": str(self.dir)}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
        proc = subprocess.run([str(self.tool(tool)), *args], env=env, text=True,
                              stdout=subprocess.PIPE if capture else sys.stderr,
                              stderr=subprocess.PIPE if capture else sys.stderr,
                              check=False, **extra)
        if check and proc.returncode != 0:
            detail = (proc.stderr or "").strip() if capture else f"see {self.logfile}"
            die(f"{tool} {' '.join(args[:2])} failed (exit {proc.returncode}): {detail}")
        return proc

    def running_port(self) -> int | None:
        """The port of the running server of this ``DIR``, or None when none runs."""
        if not (self.data / "PG_VERSION").exists():
            return None
        if self.run("pg_ctl", "status", "-D", str(self.data), check=False,
                    capture=True).returncode != 0:
            return None
        try:  # postmaster.pid: pid, data dir, start time, port, socket dir, ...
            return int((self.data / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return self.port

    def psql(self, port: int, database: str, sql: str) -> str:
        return self.run("psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                        "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-d", database, "-c", sql, capture=True).stdout.strip()

    # ---------------------------------------------------------------- set up

    def prepare_dir(self) -> None:
        """Create ``DIR`` (mode 700); as root, the user :data:`PG_USER` owns it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            ensure_user()
            entry = pwd.getpwnam(PG_USER)
            for parent in self.dir.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001 and parent.stat().st_uid != entry.pw_uid:
                    die(f"{parent} is not traversable by {PG_USER} (mode {oct(mode & 0o777)}): "
                        "pick a --dir under a world-traversable folder such as /tmp")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            if not reachable(self.bin, entry.pw_uid):
                # e.g. a venv inside a private temporary folder (mode 700, as .ci/run makes):
                # run a copy of pgserver's tree from DIR, which the user owns; the binaries
                # find their libraries at $ORIGIN/../../../pgserver.libs, so that comes too
                package = self.bin.parent.parent  # site-packages/pgserver
                copy = self.dir / "pgserver-copy"
                if not copy.exists():
                    log(f"{self.bin} is not reachable by {PG_USER}: copying it to {copy}")
                    shutil.copytree(self.bin.parent, copy / "pgserver" / "pginstall", symlinks=True)
                    libs = package.parent / "pgserver.libs"
                    if libs.is_dir():
                        shutil.copytree(libs, copy / "pgserver.libs", symlinks=True)
        self.dir.chmod(0o700)

    def init(self) -> None:
        """``initdb`` once, then the trust-on-127.0.0.1 ``pg_hba.conf`` and test settings."""
        log(f"initdb {self.data}")
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync", capture=True)
        self.write(self.data / "pg_hba.conf", HBA)
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# procmem scripts/pg_local.py\ninclude_if_exists = 'procmem.conf'\n")

    def write(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        if self.as_root:
            entry = pwd.getpwnam(PG_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def settings(self) -> str:
        socket_dir = str(self.dir).replace("'", "''")
        return (f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                "max_connections = 300\n"
                "# tests and CI only: fast, and a machine crash may lose the data\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    # --------------------------------------------------------------- commands

    def start(self) -> int:
        port = self.running_port()
        if port is not None:
            log(f"already running on port {port} ({self.data})")
            print(url(port))
            return 0
        self.prepare_dir()
        if not (self.data / "PG_VERSION").exists():
            self.init()
        self.write(self.data / "procmem.conf", self.settings())
        log(f"starting on 127.0.0.1:{self.port} (log {self.logfile})")
        if self.as_root and not self.logfile.exists():
            self.write(self.logfile, "")
        self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile),
                 "-w", "-t", "60")
        self.wait_ready()
        version = self.check_vector()
        log(f"ready: PostgreSQL with pgvector {version}")
        print(url(self.port))
        return 0

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            probe = self.run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port),
                             "-U", "postgres", check=False, capture=True)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                die(f"the server did not accept connections within {timeout_s:.0f} s; "
                    f"see {self.logfile}")
            time.sleep(0.2)

    def check_vector(self) -> str:
        """``CREATE EXTENSION vector`` in ``postgres`` and ``template1``; its version."""
        for database in ("template1", "postgres"):
            self.psql(self.port, database, "CREATE EXTENSION IF NOT EXISTS vector")
        version = self.psql(self.port, "postgres",
                            "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
        if parts < MIN_VECTOR:
            die(f"pgvector {version} has no HNSW index (needs >= 0.5.0)")
        return version

    def stop(self, purge: bool) -> int:
        if self.running_port() is None:
            log(f"not running ({self.data})")
        else:
            log(f"stopping ({self.data})")
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")
        if purge and self.dir.exists():
            log(f"removing {self.dir}")
            shutil.rmtree(self.dir)
        return 0

    def status(self) -> int:
        port = self.running_port()
        if port is None:
            log(f"stopped ({self.data})")
            return STOPPED
        log(f"running on port {port} ({self.data})")
        print(url(port))
        return 0


def ensure_user() -> None:
    """Create the system user :data:`PG_USER` (no home, no login) unless it exists."""
    try:
        pwd.getpwnam(PG_USER)
        return
    except KeyError:
        pass
    log(f"useradd {PG_USER} (initdb refuses to run as root)")
    created = subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", PG_USER],
                             check=False, text=True, stderr=subprocess.PIPE)
    if created.returncode not in (0, 9):  # 9: the user exists (a concurrent start)
        die(f"useradd {PG_USER} failed: {created.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pg_local.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "url", "status"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--dir", help="cluster folder (default $TMPDIR/procmem-pg-PORT)")
    parser.add_argument("--bin", help="PostgreSQL bin folder (default pgserver's)")
    parser.add_argument("--purge", action="store_true", help="stop: also remove DIR")
    args = parser.parse_args(argv)
    if not 1024 <= args.port <= 65535:
        parser.error(f"--port must be 1024-65535, got {args.port}")
    folder = Path(args.dir or Path(tempfile.gettempdir()) / f"procmem-pg-{args.port}")
    server = Server(folder, args.port, find_bin(args.bin))
    if args.command == "url":
        print(url(server.running_port() or args.port))
        return 0
    if args.command == "start":
        return server.start()
    if args.command == "stop":
        return server.stop(args.purge)
    return server.status()


if __name__ == "__main__":
    sys.exit(main())
