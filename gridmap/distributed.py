"""Partitions and micro-grids as tasks on a Dask cluster (``dask.distributed``).

The geometry code hands its independent pieces (a community's connected pieces to cut into
grids, a grid's buildings to group into micro-grids) to a runner (:mod:`gridmap.geo.tasks`). This
module gives it one that runs them on Dask: on the scheduler named by ``--scheduler`` or
``GRIDMAP_DASK_SCHEDULER`` (workers on other hosts: ``dask scheduler`` on one, ``dask worker
tcp://HOST:8786`` on each, every host with gridmap installed), else on a ``LocalCluster`` of this
machine's cores when the territory has at least ``GRIDMAP_DASK_MIN_UNITS`` units, else nowhere:
small territories run serially, which is faster for them (starting workers and shipping their
pieces costs seconds). Every piece carries what it needs and seeds its own random stream, so the
grids are the serial run's exactly (tests/test_distributed.py).

Workers receive pieces, never database credentials: the database is read and written by the
process that runs the command.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gridmap.geo.tasks import SERIAL, Runner
from gridmap.progress import QUIET, Progress
from gridmap.settings import Settings

T = TypeVar("T")
R = TypeVar("R")

QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Dask settings for gridmap's workers: their own monitors (a statistical profiler every 10 ms, an
event-loop tick every 20 ms, system and memory polls every 0.1–0.5 s) cost a 2-core machine a
third of its time in system calls; with these, two local workers cut 100,000 units' pieces in
10.0 s instead of 15.0 s (serial: 18.3 s; a plain process pool: 9.3 s). Workers started by
hand take the same as environment variables (README: DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s ...)."""


class DaskRunner:
    """Batches of pieces as tasks on a Dask cluster, through ``client``. Each batch is scattered
    to a worker (straight to it, not through the scheduler), the function runs there, and the
    answers come back in the batches' order. At most :data:`IN_FLIGHT_PER_WORKER` batches a
    worker are on the cluster at once, and each answer is fetched, and its batch and answer
    released there, as soon as it is done: the workers hold a few batches, not the territory
    (scattered all at once, a generated city's inputs and units held 5 GB a worker and growing).
    A task that raises stops the call with its error, and the batches still out are cancelled:
    nothing of a failed call stays on a long-lived cluster."""

    def __init__(self, client: Any, progress: Progress = QUIET):
        self.client = client
        self.progress = progress
        self.workers = max(1, sum(client.nthreads().values()))

    def map(self, fn: Callable[..., list[R]], batches: Sequence[list[T]], *, what: tuple[str, str],
            **shared: Any) -> list[list[R]]:
        from distributed import as_completed

        if not batches:
            return []
        total, told = len(batches), 0
        answers: list[Any] = [None] * total
        running = as_completed()
        place: dict[str, tuple[int, Any, Any]] = {}  # a future's key: its batch, the batch's data, the future

        def send(i: int) -> None:
            # hash=False: keys of their own. Content-hashed keys would be the previous call's when the
            # batches are the same (a second seed over the same pieces), and that call's cancel, still
            # in flight at the scheduler, would release this call's data ("lost dependencies").
            [data] = self.client.scatter([batches[i]], hash=False)
            future = self.client.submit(fn, data, pure=False, **shared)
            place[future.key] = (i, data, future)
            running.add(future)

        sent = min(total, self.workers * IN_FLIGHT_PER_WORKER)
        try:
            for i in range(sent):
                send(i)
            for done, future in enumerate(running, start=1):
                i, data, _ = place.pop(future.key)
                try:
                    answers[i] = future.result()  # a task's error is raised here
                finally:
                    self.client.cancel([future, data])
                if sent < total:
                    send(sent)
                    sent += 1
                if done * 4 // total > told or done == total:  # a line at each quarter
                    told = done * 4 // total
                    self.progress.say(f"{what[0]}: {done} of {total} batches done on {self.workers} Dask workers",
                                      f"{what[1]}：{self.workers} 个 Dask 工作进程已完成 {done}/{total} 批")
        finally:
            if place:  # a task failed, or this call was interrupted: none of its batches stays on the cluster
                self.client.cancel([item for _, data, future in place.values() for item in (future, data)])
        return answers


IN_FLIGHT_PER_WORKER = 2
"""Batches a worker holds at once: one running, one waiting so that it never idles while the
next is shipped."""


def _reachable(scheduler: str) -> None:
    """Refuse at once, in both languages, a ``tcp://HOST:PORT`` that nothing listens on (the
    Dask client would retry for its whole timeout before saying so)."""
    parsed = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    if parsed.scheme != "tcp" or parsed.hostname is None:
        return  # another protocol (tls, inproc, ucx): the client checks it
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 8786), timeout=5):
            pass
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler} ({exc.strerror or exc}); start one "
                              "with `dask scheduler` and its workers with `dask worker tcp://HOST:8786` / "
                              f"无法连接 Dask 调度器 {scheduler}（{exc.strerror or exc}）；请用 `dask scheduler` 启动调度器，"
                              "并用 `dask worker tcp://HOST:8786` 启动工作进程") from exc


@dataclass(frozen=True)
class Placement:
    """Where a command's pieces may run, as the user said it (``--scheduler``, ``--local-workers``)
    and the settings (``GRIDMAP_DASK_SCHEDULER``, ``GRIDMAP_DASK_MIN_UNITS``); the choice itself is
    made by :func:`runner_for` once the number of units is known. The default: serial below the
    settings' threshold, a LocalCluster above it."""

    scheduler: str | None = None
    local_workers: int | None = None  # 0: serially, here, whatever the size
    min_units: int = Settings.dask_min_units

    @classmethod
    def of(cls, settings: Settings, *, scheduler: str | None = None, local_workers: int | None = None) -> Placement:
        """What the command line asked for, the settings filling what it did not."""
        return cls(scheduler or settings.dask_scheduler, local_workers, settings.dask_min_units)

    def check(self) -> None:
        """Refuse before any work when the scheduler named cannot be reached (ConnectionError)."""
        if self.scheduler is not None and self.local_workers != 0:
            _reachable(self.scheduler)

    def runner(self, units: int, progress: Progress = QUIET):
        """:func:`runner_for` these choices (a context manager giving the runner)."""
        if self.local_workers == 0:
            return nullcontext(SERIAL)
        return runner_for(units, scheduler=self.scheduler, local_workers=self.local_workers,
                          min_units=self.min_units, progress=progress)


SERIAL_HERE = Placement(local_workers=0)
"""Always serially, in this process: the services' default (library calls, web requests, which
must never start worker processes); the CLI passes :meth:`Placement.of` the settings."""


@contextmanager
def runner_for(units: int, *, scheduler: str | None = None, local_workers: int | None = None,
               min_units: int = Settings.dask_min_units, progress: Progress = QUIET) -> Iterator[Runner]:
    """Where a job on ``units`` units runs: the cluster at ``scheduler`` (the settings'
    ``GRIDMAP_DASK_SCHEDULER``); else a LocalCluster of ``local_workers`` processes (default: one
    per core) when asked for, or when ``units`` reaches ``min_units`` (``GRIDMAP_DASK_MIN_UNITS``)
    on a machine of several cores; else here, serially. The cluster's dashboard address is said
    when it starts."""
    cores = os.cpu_count() or 1
    if scheduler is None and local_workers is None and (units < min_units or cores < 2):
        yield SERIAL
        return
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _reachable(scheduler)
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {exc} / "
                                  f"无法连接 Dask 调度器 {scheduler}：{exc}") from exc
        cluster = None
        where, where_zh = f"the Dask scheduler at {scheduler}", f"Dask 调度器 {scheduler}"
    else:
        with dask.config.set(QUIET_WORKERS):  # the workers take the settings as they start
            cluster = LocalCluster(n_workers=local_workers or cores, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
        client = Client(cluster)
        where, where_zh = "a local Dask cluster", "本机 Dask 集群"
    try:
        workers = sum(client.nthreads().values())
        progress.say(f"{units} units: pieces run on {where} ({workers} workers); dashboard {client.dashboard_link}",
                     f"{units} 个单元：片区在{where_zh}上运行（{workers} 个工作进程）；监控面板 {client.dashboard_link}")
        yield DaskRunner(client, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


__all__ = ["DaskRunner", "Placement", "SERIAL_HERE", "runner_for", "QUIET_WORKERS"]
