"""Run a command in a bubblewrap (``bwrap``) sandbox with limits enforced from outside it.

The sandbox sees a read-only view of the Python installation, the book's ``vae`` package and the
files given to :func:`start`; two writable folders of its own, ``/home/student`` and ``/tmp``, both
size-capped tmpfs mounts that vanish with it (nothing of the grader's disk is writable); a private
``/proc`` and ``/dev``; no network (only its own loopback) and no other process of the machine (its
own PID namespace). Every process in it, bwrap's own first process included, starts with an
environment the grader wrote (bwrap itself is started with a near-empty one, and ``--clearenv``).

When the grader runs as root, the command drops to an unprivileged user id of its own, with no
capabilities, which makes the process-count limit hold, and when the kernel's memory cgroup can be
used, the whole sandbox (every process, and the files in its tmpfs mounts) shares one memory limit;
otherwise the limit is on the address space of each process. The time limit is kept from outside:
at the deadline the namespace's first process is killed, which makes the kernel kill every process
in the namespace, and the sandbox ends only when all of them are gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
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
MPLCONFIG = "/opt/mplconfig"  # matplotlib's font cache, built once outside, bound read-only
UIDS = range(61000, 62000)  # as root, each sandbox runs as one of these, held with a lock file


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use: seconds in all; bytes of memory (the whole sandbox with a
    memory cgroup, else the address space of each process); processes (and threads) at once; bytes
    per file written; and bytes in each of its tmpfs folders (``/home/student``, ``/tmp``)."""

    seconds: float = 1260.0
    memory: int = 6 * 2**30
    processes: int = 256
    file_size: int = 64 * 2**20
    disk: int = 256 * 2**20


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


@functools.cache
def bwrap_supports(option: str) -> bool:
    """Whether the installed bwrap knows ``option`` (``--size`` and ``--disable-userns`` came in 0.8)."""
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, check=False, env={}).stdout
    except OSError:
        return False
    return f"{option} " in text


# ---------------------------------------------------------------------------------------------
# Memory for the whole sandbox: a cgroup of its own (v2, or v1's memory and pids hierarchies)


def _own_cgroup(controller: str | None) -> Path | None:
    """The folder of this process's cgroup for ``controller`` (None: the v2 hierarchy), if writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller is None and names == "") or (controller and controller in names.split(",")):
            top = Path("/sys/fs/cgroup") if controller is None else Path("/sys/fs/cgroup") / controller
            folder = top / path.lstrip("/")
            if controller is None and not (top / "cgroup.controllers").is_file():
                return None
            return folder if folder.is_dir() and os.access(folder, os.W_OK) else None
    return None


@functools.cache
def cgroup_mode() -> str | None:
    """ "v2" or "v1" when this process may make memory cgroups for its sandboxes, else None."""
    v2 = _own_cgroup(None)
    if v2 is not None:
        try:
            if "memory" in (v2 / "cgroup.subtree_control").read_text().split() or _try_mkdir(v2):
                return "v2"
        except OSError:
            pass
    v1 = _own_cgroup("memory")
    if v1 is not None and _try_mkdir(v1):
        return "v1"
    return None


def _try_mkdir(parent: Path) -> bool:
    probe = parent / f"classroom-probe-{os.getpid()}"
    try:
        probe.mkdir()
        ok = (probe / ("memory.max" if (probe / "memory.max").exists() else "memory.limit_in_bytes")).exists()
        probe.rmdir()
        return ok
    except OSError:
        return False


class Cgroup:
    """A memory cgroup (and a pids one, where there is one) for one sandbox."""

    def __init__(self, memory: int, processes: int):
        name = f"classroom-{os.getpid()}-{time.monotonic_ns()}"
        self.folders: list[Path] = []
        mode = cgroup_mode()
        if mode == "v2":
            folder = _own_cgroup(None) / name
            folder.mkdir()
            self.folders.append(folder)
            (folder / "memory.max").write_text(str(memory))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
            with contextlib.suppress(OSError):
                (folder / "pids.max").write_text(str(processes))
        elif mode == "v1":
            folder = _own_cgroup("memory") / name
            folder.mkdir()
            self.folders.append(folder)
            (folder / "memory.limit_in_bytes").write_text(str(memory))
            with contextlib.suppress(OSError):
                (folder / "memory.memsw.limit_in_bytes").write_text(str(memory))
            pids = _own_cgroup("pids")
            if pids is not None:
                with contextlib.suppress(OSError):
                    (pids / name).mkdir()
                    (pids / name / "pids.max").write_text(str(processes))
                    self.folders.append(pids / name)
        else:
            raise RuntimeError("no memory cgroup")

    @property
    def procs(self) -> list[str]:
        return [str(f / "cgroup.procs") for f in self.folders]

    def remove(self) -> None:
        for folder in self.folders:
            for _ in range(300):  # up to 30 s for the last processes to leave
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# User ids: one per sandbox at a time, across every grader on the machine


@contextlib.contextmanager
def lease_uid():
    """As root, an unprivileged uid no other sandbox of any grader on this machine uses meanwhile
    (held with a lock file); as an ordinary user, None."""
    if os.geteuid() != 0:
        yield None
        return
    locks = Path("/run/lock" if os.path.isdir("/run/lock") else "/tmp") / "classroom-uids"
    locks.mkdir(mode=0o700, exist_ok=True)
    start = int.from_bytes(os.urandom(2), "big") % len(UIDS)
    for k in range(len(UIDS)):
        uid = UIDS[(start + k) % len(UIDS)]
        fd = os.open(locks / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise RuntimeError("no free sandbox uid")


# ---------------------------------------------------------------------------------------------
# The bwrap command line


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


def _tmpfs(path: str, size: int, perms: str) -> list[str]:
    sized = ["--size", str(size)] if bwrap_supports("--size") else []
    return ["--perms", perms, *sized, "--tmpfs", path]


def environment() -> dict[str, str]:
    """The whole environment of every process in the sandbox."""
    return {
        "HOME": HOME,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": BOOK,
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": "/tmp",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": MPLCONFIG,
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "LANG": "C.UTF-8",
    }


def _bwrap_args(files: dict[str, Path], uid: int | None, limits: Limits, info_fd: int, mplconfig) -> list[str]:
    args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is None:
        args.append("--unshare-user")  # an ordinary user needs a user namespace to sandbox at all
        if bwrap_supports("--disable-userns"):
            args.append("--disable-userns")  # and no namespace of its own inside it
    args += ["--die-with-parent", "--new-session", "--clearenv", "--info-fd", str(info_fd)]
    args += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
    args += _tmpfs("/dev/shm", limits.disk, "1777") + _tmpfs("/tmp", limits.disk, "1777")
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    made = {"/usr", "/tmp", "/proc", "/dev", "/dev/shm"}
    for path in sorted({Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parents[1]}):
        if not (path == Path("/usr") or Path("/usr") in path.parents):  # /usr is bound already
            args += _read_only(path, made)
    args += _read_only(Path(vae.__file__).parent, made, f"{BOOK}/vae")
    if mplconfig is not None:  # a writable folder whose font list is the grader's, read-only
        made.add(MPLCONFIG)
        args += ["--perms", "0755", "--dir", "/opt", "--perms", "1777", "--dir", MPLCONFIG]
        for cache in Path(mplconfig).glob("fontlist-*.json"):
            args += ["--ro-bind", str(cache), f"{MPLCONFIG}/{cache.name}"]
    made.add(HOME)
    args += ["--perms", "0755", "--dir", "/home"]
    args += _tmpfs(HOME, limits.disk, "1777")  # the sandbox's own: nothing else runs in it
    for inside, outside in files.items():
        args += _read_only(Path(outside), made, inside)
    args += ["--chdir", HOME]
    for key, value in environment().items():
        args += ["--setenv", key, value]
    return args


# ---------------------------------------------------------------------------------------------
# Running


class Sandbox:
    """A started sandbox: ``send`` and ``receive`` lines on the pipes its command was given
    (``request_fd`` and ``reply_fd`` inside it), and ``end`` it. Use with :func:`start`."""

    def __init__(self, proc, child, start, limits, requests, replies, cgroup):
        self.proc, self.child, self.start, self.limits = proc, child, start, limits
        self.requests, self.replies, self.cgroup = requests, replies, cgroup
        self.buffer = b""

    def remaining(self) -> float:
        return self.limits.seconds - (time.monotonic() - self.start)

    def send(self, data: bytes) -> bool:
        """Write ``data`` to the command's requests pipe before the time limit; False if it could not."""
        view = memoryview(data)
        while view:
            left = self.remaining()
            if left <= 0:
                return False
            _, ready, _ = select.select([], [self.requests], [], min(left, 1.0))
            if ready:
                try:
                    view = view[os.write(self.requests, view[:65536]) :]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return False
        return True

    def receive(self, limit: int) -> bytes | None:
        """The next line the command writes on its replies pipe (without the newline), or None at
        the time limit, at the end of the pipe, or when the line would be over ``limit`` bytes."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > limit:
                return None
            left = self.remaining()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.replies], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(self.replies, 1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                if not chunk:
                    return None
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line if len(line) <= limit else None

    def wait(self) -> Finished:
        """Wait for the command to end, up to the time limit."""
        try:
            self.proc.wait(max(0.0, self.remaining()))
            return Finished(self.proc.returncode, time.monotonic() - self.start)
        except subprocess.TimeoutExpired:
            return Finished(None, time.monotonic() - self.start)

    @property
    def timed_out(self) -> bool:
        return self.remaining() <= 0


@contextlib.contextmanager
def start(command, limits: Limits, *, files=None, uid=None, mplconfig=None):
    """Start ``command`` in a sandbox; yields a :class:`Sandbox`, which is ended (every process in
    it killed) on leaving. Arguments of ``command`` that are exactly ``{requests}`` or ``{replies}``
    become the numbers of the two pipe ends it is given. ``files`` maps paths inside the sandbox to files bound read-only
    there. ``uid``: when the grader runs as root, the unprivileged user id the command runs as (see
    :func:`lease_uid`). ``mplconfig``: a folder holding matplotlib's font list, built outside."""
    if not available():
        raise RuntimeError("grading needs bubblewrap and util-linux: apt-get install bubblewrap")
    root = os.geteuid() == 0
    if root and uid is None:
        raise ValueError("as root, the sandbox needs an unprivileged uid for its command")
    cgroup = None
    if root and cgroup_mode() is not None:
        with contextlib.suppress(OSError, RuntimeError):
            cgroup = Cgroup(limits.memory, limits.processes)
    # Without a cgroup the memory limit is per process; with one, the cgroup holds the total and
    # each process may still not map more than the total.
    inner = ["prlimit", f"--as={limits.memory}", f"--nproc={limits.processes}"]
    inner += [f"--fsize={limits.file_size}", "--core=0", "--"]
    if root:
        inner += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        inner += ["--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
    info_read, info_write = os.pipe()
    to_child, requests = os.pipe()  # the command reads requests from to_child
    replies, from_child = os.pipe()
    for fd in (requests, replies):
        os.set_blocking(fd, False)
    names = {"{requests}": str(to_child), "{replies}": str(from_child)}
    command = [names.get(part, part) for part in command]
    argv = [*_bwrap_args(files or {}, uid if root else None, limits, info_write, mplconfig), *inner, *command]
    if cgroup is not None:  # join the cgroup before bwrap starts, so every process is in it
        joins = " && ".join(f'echo $$ > "{p}"' for p in cgroup.procs)
        argv = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(info_write, to_child, from_child),
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin"},  # bwrap's own first process keeps this environment
    )
    for fd in (info_write, to_child, from_child):
        os.close(fd)
    child = None
    try:
        child = _child_pid(info_read, limits.seconds)
        yield Sandbox(proc, child, started, limits, requests, replies, cgroup)
    finally:
        for fd in (info_read, requests, replies):
            os.close(fd)
        _end(proc, child)
        if cgroup is not None:
            cgroup.remove()


def run(command: list[str], limits: Limits, *, files=None, uid=None, mplconfig=None) -> Finished:
    """Run ``command`` in a sandbox to its end or the time limit (its output is discarded)."""
    with start(command, limits, files=files, uid=uid, mplconfig=mplconfig) as box:
        return box.wait()


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


def build_font_cache(folder: Path) -> Path | None:
    """Build matplotlib's font list into ``folder`` once, outside any sandbox, so that importing
    matplotlib inside one does not spend seconds rebuilding it; None if that fails."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg"}
    try:
        subprocess.run(
            [sys.executable, "-c", "import matplotlib.font_manager"],
            env=env,
            capture_output=True,
            timeout=300,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if not list(folder.glob("fontlist-*.json")):
        return None
    for path in folder.iterdir():
        path.chmod(0o444)
    return folder
