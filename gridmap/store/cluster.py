"""A private PostgreSQL + PostGIS cluster that gridmap starts, stops and reuses by itself.

Why: a fresh machine has no database server, and the quickstart must not depend on one.
The cluster lives in ``<home>/cluster`` (see :mod:`gridmap.settings`), listens only on
127.0.0.1 at a free port chosen on first start (and re-chosen if another program takes it),
and uses password (SCRAM) authentication with a random password kept in
``<home>/cluster.json`` (mode 0600). PostgreSQL refuses to run as root, so when gridmap runs as
root every server command is run as an unprivileged OS user (``gridmap`` by default, created on
first start) through ``runuser``.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gridmap.progress import QUIET, Progress

SUPERUSER = "gridmap"


class ClusterError(RuntimeError):
    """The local cluster could not be created, started or reached; the message says why."""


@dataclass(frozen=True)
class ClusterStatus:
    """What ``gridmap db status`` reports."""

    initialized: bool
    running: bool
    port: int | None
    data_dir: Path
    pid: int | None

    def describe(self) -> str:
        if not self.initialized:
            return f"not initialized (data folder {self.data_dir})"
        state = f"running (pid {self.pid}) on 127.0.0.1:{self.port}" if self.running else "stopped"
        return f"{state}; data folder {self.data_dir}"

    def describe_zh(self) -> str:
        """The same in Chinese (the CLI prints both)."""
        if not self.initialized:
            return f"尚未初始化（数据目录 {self.data_dir}）"
        state = f"运行中（进程 {self.pid}），地址 127.0.0.1:{self.port}" if self.running else "已停止"
        return f"{state}；数据目录 {self.data_dir}"


def find_pg_bindir(explicit: Path | None = None) -> Path:
    """Return the PostgreSQL server binaries to use.

    The newest ``/usr/lib/postgresql/N/bin`` whose share folder has the PostGIS extension
    wins, so that ``CREATE EXTENSION postgis`` works in the cluster we create.
    """
    if explicit is not None:
        if not (explicit / "initdb").exists():
            raise ClusterError(f"GRIDMAP_PG_BINDIR={explicit} has no initdb")
        return explicit
    candidates = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        if not version.isdigit() or not (bindir / "initdb").exists():
            continue
        has_postgis = Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()
        candidates.append((has_postgis, int(version), bindir))
    if not candidates:
        raise ClusterError(
            "no PostgreSQL server found under /usr/lib/postgresql; run scripts/setup.sh "
            "(or apt-get install postgresql-15 postgresql-15-postgis-3)"
        )
    has_postgis, _, bindir = max(candidates)
    if not has_postgis:
        raise ClusterError(
            f"PostgreSQL found in {bindir} but PostGIS is not installed for it; "
            "run scripts/setup.sh (or apt-get install postgresql-15-postgis-3)"
        )
    return bindir


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """The private cluster in ``home``; every method is safe to call repeatedly."""

    def __init__(
        self,
        home: Path,
        *,
        bindir: Path | None = None,
        os_user: str = "gridmap",
        db_name: str = "gridmap",
    ) -> None:
        self.home = Path(home)
        self.data_dir = self.home / "cluster"
        self.socket_dir = self.home / "run"
        self.log_file = self.home / "log" / "postgresql.log"
        self.state_file = self.home / "cluster.json"
        self.db_name = db_name
        self._explicit_bindir = bindir
        self.as_root = os.geteuid() == 0
        self.os_user = os_user if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    # -- state -------------------------------------------------------------------------
    @property
    def bindir(self) -> Path:
        return find_pg_bindir(self._explicit_bindir)

    def _read_state(self) -> dict:
        if not self.state_file.exists():
            return {}
        return json.loads(self.state_file.read_text())

    def _write_state(self, state: dict) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh)
        os.replace(tmp, self.state_file)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise concurrent start/stop calls on the same cluster."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists() and self.state_file.exists()

    # -- commands ----------------------------------------------------------------------
    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        """Run a server binary, as the unprivileged cluster user when we are root."""
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and proc.returncode != 0:
            raise ClusterError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc

    def _ensure_os_user(self) -> None:
        if not self.as_root:
            return
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "--home-dir", "/nonexistent", self.os_user],
                check=True, capture_output=True,
            )

    def _chown(self, path: Path) -> None:
        if self.as_root:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """As root, every parent of the data folder must be traversable by the cluster user."""
        if not self.as_root:
            return
        proc = self._run(["test", "-x", str(self.home)], check=False)
        if proc.returncode != 0:
            raise ClusterError(
                f"the cluster user '{self.os_user}' cannot reach {self.home}; "
                "set GRIDMAP_HOME to a folder outside a private home directory (e.g. /var/lib/gridmap)"
            )

    def _write_conf(self, port: int) -> None:
        conf = (
            "# Written by gridmap; changes are overwritten on start.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "max_connections = 100\n"
            "shared_buffers = '256MB'\n"
            "timezone = 'UTC'\n"
        )
        path = self.data_dir / "gridmap.conf"
        path.write_text(conf)
        self._chown(path)

    def initialize(self, progress: Progress = QUIET) -> None:
        """Create the cluster (initdb) if it does not exist yet."""
        if self.initialized:
            return
        bindir = self.bindir
        self._ensure_os_user()
        for folder in (self.home, self.socket_dir, self.log_file.parent):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        for folder in (self.socket_dir, self.log_file.parent):
            self._chown(folder)
        self._check_reachable()
        if self.data_dir.exists():  # a half-made cluster from an interrupted initdb
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        self._chown(self.data_dir)
        password = secrets.token_urlsafe(24)
        pwfile = self.home / ".initdb-pw"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            with progress.step(f"creating the local PostgreSQL cluster in {self.data_dir}",
                               f"在 {self.data_dir} 创建本地 PostgreSQL 集群"):
                self._run([
                    bindir / "initdb", "-D", self.data_dir, "-U", SUPERUSER,
                    "--auth-local=peer", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                    "--encoding=UTF8", "--locale=C.UTF-8",
                ])
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'gridmap.conf'\n")
        self._write_state({"port": free_port(), "user": SUPERUSER, "password": password})

    def status(self) -> ClusterStatus:
        """Report whether the cluster exists and runs, without changing anything."""
        state = self._read_state()
        pid = None
        running = False
        pidfile = self.data_dir / "postmaster.pid"
        if self.initialized and pidfile.exists():
            try:
                pid = int(pidfile.read_text().splitlines()[0])
                os.kill(pid, 0)
                running = True
            except (ValueError, IndexError, ProcessLookupError):
                pid = None
            except PermissionError:
                running = True
        return ClusterStatus(self.initialized, running, state.get("port"), self.data_dir, pid)

    def start(self, progress: Progress = QUIET) -> str:
        """Initialise if needed, start if stopped, create the database with PostGIS; return its URL."""
        with self._lock():
            self.initialize(progress)
            current = self.status()
            if not current.running:
                state = self._read_state()
                port = int(state["port"])
                if port_in_use(port):
                    port = free_port()
                    state["port"] = port
                    self._write_state(state)
                self._write_conf(port)
                with progress.step(f"starting PostgreSQL on 127.0.0.1:{port}", f"在 127.0.0.1:{port} 启动 PostgreSQL"):
                    self._run([
                        self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file,
                        "-w", "-t", "60", "start",
                    ])
            else:
                progress.say(f"PostgreSQL already running on 127.0.0.1:{current.port}",
                             f"PostgreSQL 已在 127.0.0.1:{current.port} 运行")
            self.ensure_database(self.db_name, progress)
        return self.url()

    def stop(self, progress: Progress = QUIET) -> bool:
        """Stop the server (fast shutdown). Returns False if it was not running."""
        with self._lock():
            if not self.status().running:
                return False
            with progress.step("stopping PostgreSQL", "停止 PostgreSQL"):
                self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop"])
            return True

    def destroy(self) -> None:
        """Stop the cluster and delete its folder (used by tests of the cluster itself)."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- connecting --------------------------------------------------------------------
    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of a database in this cluster."""
        state = self._read_state()
        if not state:
            raise ClusterError(f"no local cluster in {self.home}; run `gridmap db start`")
        db = database or self.db_name
        return f"postgresql+psycopg2://{state['user']}:{state['password']}@127.0.0.1:{state['port']}/{db}"

    def ensure_database(self, name: str, progress: Progress = QUIET) -> None:
        """Create database ``name`` with PostGIS if missing."""
        from gridmap.store.databases import ensure_postgis_database

        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ClusterError(f"database name {name!r}: letters, digits and _ only")
        ensure_postgis_database(self.url(name), progress)


def cluster_from_settings(settings=None) -> LocalCluster:
    """The local cluster as configured by the environment."""
    from gridmap.settings import Settings

    settings = settings or Settings.from_env()
    return LocalCluster(
        settings.home, bindir=settings.pg_bindir, os_user=settings.cluster_user, db_name=settings.db_name
    )
