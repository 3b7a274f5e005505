"""The grader's sandbox on its own: what a process inside can see and do, and that the time limit
ends every process it started. Each check is an outcome (a file written or not, a value seen)."""

import json
import os
import sys
import time

import pytest

from classroom import sandbox

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="grading needs bubblewrap: apt-get install bubblewrap")

PROBE = """
import json, os, socket
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
json.dump(facts, open("facts.json", "w"))
"""

# Leaves a grandchild in a session of its own that writes a file after the time limit has passed.
LINGER = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(4)
        open("late.txt", "w").write("still running")
    os._exit(0)
time.sleep(600)
"""


def run(code, home, seconds=60.0):
    return sandbox.run([sys.executable, "-c", code], home, sandbox.Limits(seconds=seconds, memory=4 * 2**30), uid=61100)


def test_a_sandboxed_process_sees_only_its_own_folder_and_processes(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's own file")
    home = tmp_path / "home"
    home.mkdir()
    finished = run(PROBE.replace("SECRET", repr(str(secret))), home)
    assert finished.returncode == 0
    facts = json.loads((home / "facts.json").read_text())
    assert facts["network"] is False and [name for _, name in facts["interfaces"]] == ["lo"]
    assert max(facts["pids"]) < 20  # its own PID namespace: bwrap's init, the command, little else
    assert facts["usr"] == "read-only" and facts["secret"] == "hidden" and facts["memory"] == "refused"
    assert facts["uid"] != 0 or os.geteuid() != 0


def test_the_time_limit_ends_every_process_the_sandbox_started(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    finished = run(LINGER, home, seconds=2.0)
    assert finished.timed_out
    time.sleep(6)  # the grandchild would have written its file by now
    assert not (home / "late.txt").exists()
