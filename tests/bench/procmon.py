"""Run a command and sample the memory of its whole process tree.

    peak_total_mb    largest sum of RSS over the process and all its descendants at one sample
    peak_single_mb   largest RSS of any one process in the tree
    peak_procs       most processes alive in the tree at one sample

Sampling every 0.1 s misses spikes shorter than that; children that start and die
between two samples are not seen. Needs psutil.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class RunResult:
    returncode: int
    wall_s: float
    peak_total_mb: float
    peak_single_mb: float
    peak_single_name: str
    peak_procs: int
    samples: int = 0
    extra: dict = field(default_factory=dict)


def run_monitored(cmd, *, interval: float = 0.1, **popen_kwargs) -> RunResult:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **popen_kwargs)
    root = psutil.Process(proc.pid)
    peak = {"total": 0, "single": 0, "name": "", "procs": 0, "samples": 0, "at_total": {}}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            total = 0
            sizes = {}
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total += rss
                sizes[p.pid] = rss
                if rss > peak["single"]:
                    peak["single"] = rss
                    try:
                        peak["name"] = " ".join(p.cmdline()[:3])[:120]
                    except (psutil.Error, OSError):
                        peak["name"] = "?"
            if total > peak["total"]:
                peak["total"] = total
                peak["at_total"] = {f"{pid} {role_of(p)}": rss for p in procs if (pid := p.pid) in sizes
                                    for rss in [sizes[pid]]}
            peak["procs"] = max(peak["procs"], len(procs))
            peak["samples"] += 1
            done.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        rc = proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    mb = 2**20
    return RunResult(
        returncode=rc,
        wall_s=wall,
        peak_total_mb=peak["total"] / mb,
        peak_single_mb=peak["single"] / mb,
        peak_single_name=peak["name"],
        peak_procs=peak["procs"],
        samples=peak["samples"],
        extra={"at_peak_total_mb": {k: round(v / mb) for k, v in peak["at_total"].items()}},
    )


def role_of(p: psutil.Process) -> str:
    """A short name for a process of a build: its script or module and the first argument."""
    try:
        cmd = p.cmdline()
    except (psutil.Error, OSError):
        return "?"
    words = [w for w in cmd[1:] if not w.startswith("-")] or cmd[:1]
    if "-m" in cmd:
        return cmd[cmd.index("-m") + 1].rsplit(".", 1)[-1]
    return " ".join(w.rsplit("/", 1)[-1] for w in words[:2])
