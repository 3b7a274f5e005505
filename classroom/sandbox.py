"""Run a command in a bubblewrap (``bwrap``) sandbox with limits enforced from outside it.

The sandbox sees a read-only view of the Python installation, the book's ``vae`` package and the
files given to :func:`run`; one writable folder of its own (``/home/student``); a private ``/tmp``,
``/proc`` and ``/dev``; no network (only its own loopback) and no other process of the machine (its
own PID namespace). When the grader runs as root, the command inside also drops to an unprivileged
user id of its own, which makes the process-count limit hold. The time limit is kept from outside:
at the deadline the namespace's first process is killed, which makes the kernel kill every process
in the namespace, and :func:`run` returns only when all of them are gone.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import vae

HOME = "/home/student"
BOOK = "/opt/book"  # where the sandbox finds the vae package


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use: seconds in all, bytes of address space per process,
    processes (and threads) at once, and bytes per file written."""

    seconds: float = 1260.0
    memory: int = 6 * 2**30
    processes: int = 256
    file_size: int = 64 * 2**20


@dataclass(frozen=True)
class Finished:
    """How a sandboxed run ended: the exit code (None when it was killed at the time limit)."""

    returncode: int | None
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def available() -> bool:
    """Whether ``bwrap``, ``prlimit`` and ``setpriv`` are installed."""
    return all(shutil.which(tool) for tool in ("bwrap", "prlimit", "setpriv"))


def _read_only(path: Path, made: set[str], inside: str | None = None) -> list[str]:
    """bwrap arguments binding ``path`` read-only at ``inside`` (default: the same place), with
    world-readable parent folders."""
    inside = Path(inside or path)
    args = []
    for parent in reversed(inside.parents[:-1]):
        if str(parent) not in made:
            made.add(str(parent))
            args += ["--perms", "0755", "--dir", str(parent)]
    made.add(str(inside))
    return [*args, "--ro-bind", str(path), str(inside)]


def _bwrap_args(home: Path, files: dict[str, Path], uid: int | None, info_fd: int) -> list[str]:
    args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is None:
        args.append("--unshare-user")  # an ordinary user needs a user namespace to sandbox at all
    args += ["--die-with-parent", "--new-session", "--clearenv", "--info-fd", str(info_fd)]
    args += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    made = {"/usr", "/tmp", "/proc", "/dev"}
    for path in sorted({Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parents[1]}):
        if not (path == Path("/usr") or Path("/usr") in path.parents):  # /usr is bound already
            args += _read_only(path, made)
    args += _read_only(Path(vae.__file__).parent, made, f"{BOOK}/vae")
    for inside, outside in files.items():
        args += _read_only(Path(outside), made, inside)
    args += ["--bind", str(home), HOME, "--chdir", HOME]
    environment = {
        "HOME": HOME,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": BOOK,
        "TMPDIR": "/tmp",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for key, value in environment.items():
        args += ["--setenv", key, value]
    return args


def run(command: list[str], home: Path, limits: Limits, *, stdin: bytes = b"", files=None, uid=None) -> Finished:
    """Run ``command`` in a sandbox whose only writable folder is ``home`` (seen as ``/home/student``).

    ``files`` maps paths inside the sandbox to files bound read-only there. ``uid``: when the grader
    runs as root, the unprivileged user id the command runs as (each concurrent run needs its own,
    as the process limit counts per user). The command's output is discarded.
    """
    if not available():
        raise RuntimeError("grading needs bubblewrap and util-linux: apt-get install bubblewrap")
    root = os.geteuid() == 0
    if root and uid is None:
        raise ValueError("as root, run needs an unprivileged uid for the sandboxed command")
    if root:
        os.chown(home, uid, uid)
    inner = [
        "prlimit",
        f"--as={limits.memory}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size}",
        "--core=0",
        "--",
    ]
    if root:
        inner += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--bounding-set=-all",
            "--inh-caps=-all",
        ]
    info_read, info_write = os.pipe()
    start = time.monotonic()
    proc = subprocess.Popen(
        [*_bwrap_args(home, files or {}, uid if root else None, info_write), *inner, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(info_write,),
        start_new_session=True,
    )
    os.close(info_write)
    child = None
    try:
        child = _child_pid(info_read, limits.seconds)
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            proc.wait(max(0.0, limits.seconds - (time.monotonic() - start)))
            return Finished(proc.returncode, time.monotonic() - start)
        except subprocess.TimeoutExpired:
            return Finished(None, time.monotonic() - start)
    finally:
        os.close(info_read)
        _end(proc, child)


def _child_pid(info: int, seconds: float) -> int | None:
    """The host pid of the sandbox's first process, which bwrap reports as JSON on ``info``."""
    text = b""
    deadline = time.monotonic() + min(seconds, 60.0)
    while b"}" not in text and time.monotonic() < deadline:
        ready, _, _ = select.select([info], [], [], 1.0)
        if ready:
            chunk = os.read(info, 4096)
            if not chunk:
                break
            text += chunk
    try:
        return int(json.loads(text)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _end(proc: subprocess.Popen, child: int | None) -> None:
    """Kill the sandbox's first process (the kernel then kills the rest of its PID namespace) and
    bwrap, and wait for bwrap: it exits only once its child, and so the namespace, is gone. While
    bwrap runs, its child has not been reaped, so its pid cannot belong to another process."""
    if proc.poll() is None:
        try:
            if child is not None:
                os.kill(child, signal.SIGKILL)
            else:  # bwrap never said: kill it, and --die-with-parent takes its child down with it
                os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
