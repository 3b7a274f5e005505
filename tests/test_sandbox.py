"""The grader's sandbox on its own: what a process inside can see and do, and that the limits hold.
Each check is an outcome (a value seen, a file written or not, a process that could not run); what a
process inside reports comes back on the pipe the grader gives it."""

import json
import os
import sys
import time

import pytest

from classroom import sandbox

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="grading needs bubblewrap: apt-get install bubblewrap")

REPORT = """
import json, os, sys
def report(facts):
    os.write(int(sys.argv[1]), json.dumps(facts).encode() + b"\\n")
"""

PROBE = (
    REPORT
    + """
import socket
facts = {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "interfaces": socket.if_nameindex()}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    facts["network"] = True
except OSError:
    facts["network"] = False
try:
    open("/usr/probe", "w").close()
    facts["usr"] = "writable"
except OSError:
    facts["usr"] = "read-only"
facts["secret"] = "visible" if os.path.exists(SECRET) else "hidden"
try:
    bytearray(8 * 2**30)
    facts["memory"] = "allowed"
except MemoryError:
    facts["memory"] = "refused"
facts["uid"] = os.getuid()
facts["environ"] = {}
for pid in ("1", "self", str(os.getppid())):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            facts["environ"][pid] = sorted(v.split(b"=", 1)[0].decode() for v in f.read().split(b"\\0") if v)
    except OSError as err:
        facts["environ"][pid] = type(err).__name__
report(facts)
"""
)

# Leaves a grandchild in a session of its own that reports after the time limit has passed.
LINGER = (
    REPORT
    + """
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(4)
        report("still running")
    os._exit(0)
time.sleep(600)
"""
)

# Writes 1 MiB at a time to /tmp and to the home folder until refused, and says how much.
FILL = (
    REPORT
    + """
written = {}
for folder in ("/tmp", "/dev/shm", "/home/student"):
    written[folder] = 0
    try:
        for k in range(400):
            with open(os.path.join(folder, f"fill{k}"), "wb") as f:
                f.write(b"\\1" * 2**20)
            written[folder] += 2**20
    except OSError:
        pass
report(written)
"""
)

# Three processes, each touching 400 MiB: 1.2 GiB in all, under a limit of 768 MiB for the sandbox.
SPREAD = (
    REPORT
    + """
import time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(3)
        os._exit(0)
    children.append(pid)
report([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])
"""
)


def sandboxed(code, seconds=60.0, **limits):
    """What ``code`` reports from inside a sandbox (None if nothing), and how the run ended."""
    limits = sandbox.Limits(seconds=seconds, **{"memory": 4 * 2**30, **limits})
    with sandbox.lease_uid() as uid, sandbox.start([sys.executable, "-c", code, "{replies}"], limits, uid=uid) as box:
        line = box.receive(2**20)
        finished = box.wait()
    return (json.loads(line) if line else None), finished


def test_a_sandboxed_process_sees_only_its_own_files_processes_and_environment(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's own file")
    facts, finished = sandboxed(PROBE.replace("SECRET", repr(str(secret))))
    assert finished.returncode == 0
    assert facts["network"] is False and [name for _, name in facts["interfaces"]] == ["lo"]
    assert max(facts["pids"]) < 20  # its own PID namespace: bwrap's init, the command, little else
    assert facts["usr"] == "read-only" and facts["secret"] == "hidden" and facts["memory"] == "refused"
    assert facts["uid"] != 0 or os.geteuid() != 0
    allowed = set(sandbox.environment()) | {"PWD", "SHLVL", "_"}
    for pid, seen in facts["environ"].items():  # bwrap's first process included: pid 1
        assert isinstance(seen, str) or set(seen) <= allowed, (pid, seen)
    assert set(facts["environ"]["self"]) <= allowed and "HOME" in facts["environ"]["self"]


def test_the_time_limit_ends_every_process_the_sandbox_started():
    start = time.monotonic()
    facts, finished = sandboxed(LINGER, seconds=2.0)
    assert finished.timed_out and facts is None
    assert time.monotonic() - start < 60


@pytest.mark.skipif(not sandbox.bwrap_supports("--size"), reason="bwrap older than 0.8 has no --size")
def test_the_writable_folders_are_capped():
    facts, finished = sandboxed(FILL, disk=64 * 2**20)
    assert finished.returncode == 0
    assert all(0 < written <= 64 * 2**20 for written in facts.values()), facts


@pytest.mark.skipif(sandbox.cgroup_mode() is None or os.geteuid() != 0, reason="needs a memory cgroup (as root)")
def test_the_memory_limit_holds_for_all_processes_together():
    facts, _ = sandboxed(SPREAD, memory=768 * 2**20)
    assert facts is None or facts.count(0) < 3, facts  # at most two of the three could hold their memory


def test_concurrent_sandboxes_get_different_uids():
    with sandbox.lease_uid() as first, sandbox.lease_uid() as second:
        assert first is None or first != second
