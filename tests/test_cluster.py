"""The private cluster: start, status, stop, reuse, port conflicts, clear errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap.store.cluster import ClusterError, LocalCluster, find_pg_bindir

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster_home():
    # Not pytest's tmp_path: as root the cluster user must be able to traverse the folder.
    home = Path(tempfile.mkdtemp(prefix="gridmap-cluster-test-", dir="/tmp"))
    os.chmod(home, 0o755)
    yield home
    cluster = LocalCluster(home)
    if cluster.initialized:
        cluster.stop()
    shutil.rmtree(home, ignore_errors=True)


def _query(url: str, sql: str):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_start_status_stop_and_reuse(cluster_home: Path) -> None:
    cluster = LocalCluster(cluster_home, db_name="gridmap")
    assert not cluster.status().initialized
    url = cluster.start()
    status = cluster.status()
    assert status.running and status.port is not None
    assert _query(url, "SELECT postgis_lib_version()").startswith("3.")
    # listens on loopback only, with password authentication
    assert _query(url, "SHOW listen_addresses") == "127.0.0.1"
    assert _query(url, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'") == 0
    _query(url, "CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (42)")

    # starting again is a no-op: same port, same server process
    pid = status.pid
    assert cluster.start() == url
    assert cluster.status().pid == pid

    assert cluster.stop() is True
    assert not cluster.status().running
    assert cluster.stop() is False

    # restart reuses the data folder: the table is still there
    url2 = cluster.start()
    assert _query(url2, "SELECT x FROM keep_me") == 42
    state = (cluster_home / "cluster.json").stat()
    assert oct(state.st_mode & 0o777) == "0o600"


def test_port_taken_by_another_program_moves_the_cluster(cluster_home: Path) -> None:
    cluster = LocalCluster(cluster_home)
    cluster.start()
    old_port = cluster.status().port
    cluster.stop()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", old_port))
    squatter.listen(1)
    try:
        url = cluster.start()
        assert cluster.status().port != old_port
        assert _query(url, "SELECT 1") == 1
    finally:
        squatter.close()


def test_cli_db_commands(cluster_home: Path) -> None:
    env = {**os.environ, "GRIDMAP_HOME": str(cluster_home)}
    env.pop("GRIDMAP_DATABASE_URL", None)
    gridmap = [sys.executable, "-m", "gridmap.cli"]
    stopped = subprocess.run([*gridmap, "db", "status"], env=env, capture_output=True, text=True)
    assert stopped.returncode == 3 and "not initialized" in stopped.stdout
    started = subprocess.run([*gridmap, "db", "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert "starting PostgreSQL" in started.stderr  # progress lines, not silence
    status = subprocess.run([*gridmap, "db", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 0 and "running" in status.stdout
    url = subprocess.run([*gridmap, "db", "url"], env=env, capture_output=True, text=True).stdout.strip()
    assert _query(url, "SELECT current_database()") == "gridmap"
    stop = subprocess.run([*gridmap, "db", "stop"], env=env, capture_output=True, text=True)
    assert stop.returncode == 0 and "stopped" in stop.stdout


def test_missing_postgis_binaries_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no initdb"):
        find_pg_bindir(tmp_path)


def test_unreachable_home_is_explained_when_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs the cluster as another user")
    home = Path(tempfile.mkdtemp(prefix="gridmap-private-"))  # mode 0700, owned by root
    try:
        private = home / "inner"
        os.chmod(home, 0o700)
        with pytest.raises(ClusterError, match="cannot reach"):
            LocalCluster(private).start()
    finally:
        shutil.rmtree(home, ignore_errors=True)
