"""A throwaway Ray cluster on this machine (`ray start --head`), for the Ray test and benchmark.

``LocalRayCluster(num_cpus=2)`` starts a head node in its own process group with its own temporary folder
and ports, and stops exactly that cluster (its processes and their children, e.g. the actors' worker
processes, which Ray puts in process groups of their own): never ``ray stop``, which ends every Ray
process of the machine, another user's cluster included.

Ray records this machine's own address for a head started on 127.0.0.1; drivers here join it at
``127.0.0.1:PORT`` (:attr:`address`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

SRC = Path(__file__).resolve().parents[1] / "src"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of every process readable in /proc."""
    out: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm)": state ppid pgrp ...
        out[int(entry.name)] = (int(fields[1]), int(fields[2]), cmdline)
    return out


class LocalRayCluster:
    """A Ray head node with ``num_cpus`` CPUs on this machine; workers import pasture from this checkout."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.port = _free_port()
        self.temp_dir = Path(tempfile.mkdtemp(prefix="pray-", dir="/tmp"))  # short: Ray's socket paths are long
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.pgid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180.0) -> LocalRayCluster:
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--num-cpus={self.num_cpus}",
            f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=false",
            f"--dashboard-agent-listen-port={_free_port()}", "--disable-usage-stats",
            "--object-store-memory=200000000",  # small: nothing big travels through it here
        ]  # fmt: skip
        log = self.temp_dir / "start.log"
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = proc.pid  # `ray start` leads a new process group; the cluster's processes stay in it
        try:
            rc = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != 0:
            text = log.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"`ray start --head` failed (exit {rc}): {text}")
        return self

    def members(self) -> set[int]:
        """The cluster's processes: its process group and every descendant of it."""
        if self.pgid is None:
            return set()
        table = _processes()
        found = {pid for pid, (_, pgrp, _) in table.items() if pgrp == self.pgid}
        grew = True
        while grew:
            more = {pid for pid, (ppid, _, _) in table.items() if ppid in found and pid not in found}
            found |= more
            grew = bool(more)
        return found

    def actor_pids(self, class_name: str) -> list[int]:
        """Worker processes of this cluster running an actor of ``class_name`` (Ray titles them ray::NAME)."""
        table = _processes()
        titles = {pid: table[pid][2].split(" ", 1)[0] for pid in self.members() if pid in table}
        return sorted(
            pid
            for pid, title in titles.items()
            if title == f"ray::{class_name}" or title.startswith(f"ray::{class_name}.")
        )

    def stop(self) -> None:
        """End every process of the cluster (TERM, then KILL after 2 s) and remove its temporary folder."""
        for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):  # a throwaway cluster: no long grace
            pids = self.members()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self._alive(pids):
                time.sleep(0.1)
            if not self._alive(pids):
                break
        self.pgid = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    @staticmethod
    def _alive(pids: set[int]) -> bool:
        table = _processes()
        for pid in pids:
            if pid in table:
                try:
                    if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
                        return True
                except OSError:
                    continue
        return False

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
