"""Run a throwaway PostgreSQL server (Debian's /usr/lib/postgresql/N/bin) for tests, without Docker.

    with LocalPostgres() as pg:
        url = pg.create_database("balance_1234")   # postgresql+psycopg://postgres@127.0.0.1:PORT/balance_1234

Durability is switched off (fsync, synchronous_commit, full_page_writes): the data is thrown away and
tests run several times faster. initdb and postgres refuse to run as root, so under root the server
runs as the `postgres` OS user and the data directory is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from devstack.ports import free_port
from devstack.processes import LocalServer, spawn, stop_process, wait_until_ready

_HOST = "127.0.0.1"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresStartError(RuntimeError):
    """initdb or the server failed; the message carries the relevant output."""


def find_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin with initdb (Debian's layout; PG_BIN_DIR overrides)."""
    override = os.environ.get("PG_BIN_DIR")
    if override:
        return Path(override)
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not candidates:
        raise PostgresStartError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run `make install`")
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


class LocalPostgres(LocalServer):
    """A PostgreSQL server on 127.0.0.1 with trust auth for user `postgres`.

    Without `data_dir` a private temporary directory is used and removed on stop(). With a given
    `data_dir` the cluster is kept and reused on the next start (initdb runs only once).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        *,
        bin_dir: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self._owns_data_dir = data_dir is None
        self._given_data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.data_dir: Path | None = self._given_data_dir
        self.port = port or free_port()
        self.bin_dir = Path(bin_dir) if bin_dir else find_bin_dir()
        self.startup_timeout_s = startup_timeout_s
        self.version: str | None = None  # server_version, e.g. "15.14", known once started
        self._proc: subprocess.Popen[bytes] | None = None
        # Root may not run PostgreSQL: switch to the postgres OS user for initdb and the server.
        self._run_as: pwd.struct_passwd | None = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    # -- what callers need ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for `dbname` on this server."""
        return f"postgresql+psycopg://postgres@{_HOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq/psycopg connection string for `dbname` on this server."""
        return f"host={_HOST} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (lowercase letters, digits, underscores); return its SQLAlchemy URL."""
        if not _DB_NAME.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None, "not started"
        return self.data_dir / "postgres.log"

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> LocalPostgres:
        if self._proc is not None and self._proc.poll() is None:
            return self
        if self.data_dir is None:
            # Under /tmp rather than pytest's tmp_path: that sits in a root-only (0700) tree that the
            # postgres user cannot enter.
            self.data_dir = Path(tempfile.mkdtemp(prefix="reciprocity-pg-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.data_dir)
        cluster = self.data_dir / "cluster"
        if not (cluster / "PG_VERSION").exists():
            self._initdb(cluster)
        log_file_path = self.data_dir / "postgres.log"
        cmd = [
            str(self.bin_dir / "postgres"),
            "-D", str(cluster),
            "-p", str(self.port),
            "-c", f"listen_addresses={_HOST}",
            # Socket inside the data dir: no clash with a system cluster's /var/run/postgresql.
            "-c", f"unix_socket_directories={self.data_dir}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        with open(log_file_path, "ab") as log_file:
            # SIGINT is PostgreSQL's "fast shutdown": it does not wait for clients to disconnect.
            self._proc = spawn(cmd, log_file, dies_with=signal.SIGINT, **self._user_kwargs())
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace_s: float = 30.0) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT, grace_s)
            self._proc = None
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    # -- internals -----------------------------------------------------------------------------------

    def _user_kwargs(self) -> dict[str, object]:
        if self._run_as is None:
            return {}
        # Popen switches user in the child itself (unlike `runuser`, no extra process sits between us
        # and the server, so our signals reach postgres directly). HOME matters to libpq tools.
        env = dict(os.environ, HOME=self._run_as.pw_dir, USER="postgres", LOGNAME="postgres")
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": [], "env": env}

    def _hand_over(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
            path.chmod(0o700)

    def _initdb(self, cluster: Path) -> None:
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D", str(cluster),
            "-U", "postgres",
            "--auth=trust",  # local socket and 127.0.0.1 without passwords: a throwaway server
            "--encoding=UTF8",
            "--locale=C",  # deterministic sorting, no dependency on installed OS locales
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            **self._user_kwargs(),  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            raise PostgresStartError(
                f"initdb failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )

    def _wait_until_ready(self) -> None:
        import psycopg

        def accepts_connections() -> bool:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                self.version = str(row[0]).split()[0] if row else None
                return True

        assert self._proc is not None
        wait_until_ready(self._proc, accepts_connections, what=f"postgres on {_HOST}:{self.port}",
                         timeout_s=self.startup_timeout_s, interval_s=0.1, log_path=self.log_path,
                         error=PostgresStartError)
