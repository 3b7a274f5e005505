"""Runs inside the sandbox, in a fresh interpreter: one submission's code cells, then the grader's
requests, one at a time, over a pair of pipes that the grader opened.

Usage: ``python worker.py CELLS REQUESTS REPLIES CPU_SECONDS WALL_SECONDS``. CELLS is a JSON list
of the submission's code cells (a read-only file the grader wrote); REQUESTS and REPLIES are the
numbers of the pipe ends the grader passed in. Each cell runs in one IPython shell (no Jupyter
kernel, no other process), and is interrupted with ``KeyboardInterrupt`` after CPU_SECONDS of
processor time or WALL_SECONDS of wall-clock time. After the last cell the worker ends every other
process of the sandbox it may signal, writes ``ready`` and answers requests: each is one JSON line
``{"nonce": N, "op": ..., ...}`` and gets one JSON line back with the same nonce.

Nothing here is trusted: the submission runs in this process and can change any of it. The
grader decides which requests it sends and accepts one answer per request, with that request's
nonce, holding only the names the request asked for; the answers are compared outside the sandbox.
"""

import builtins
import json
import os
import signal
import sys

# Taken before any of the submission runs: which classes are the built-in exceptions.
BUILTIN_ERRORS = {id(v): n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
MAX_REQUEST = 64 * 2**20


def error_name(err: BaseException) -> str:
    """The nearest built-in exception class of ``err`` (numpy's own MemoryError is a MemoryError, a
    class the submission made from Exception is an Exception): never a name the submission chose."""
    for cls in type(err).__mro__:
        if id(cls) in BUILTIN_ERRORS:
            return BUILTIN_ERRORS[id(cls)]
    return ""


class Limits:
    """Interrupts the main thread with KeyboardInterrupt after ``cpu`` seconds of processor time or
    ``wall`` seconds of wall-clock time, whichever comes first."""

    def __init__(self, cpu: float, wall: float):
        self.cpu, self.wall = cpu, wall

    def _interrupt(self, signum, frame):
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise KeyboardInterrupt

    def __enter__(self):
        signal.signal(signal.SIGPROF, self._interrupt)
        signal.signal(signal.SIGALRM, self._interrupt)
        signal.setitimer(signal.ITIMER_PROF, self.cpu)
        signal.setitimer(signal.ITIMER_REAL, self.wall)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


def plain(value, depth=0):
    """``value`` as JSON data: tensors and arrays of numbers as nested lists of floats, everything
    else that is not a number, string, list or dict as ``{"type": "other"}``."""
    if depth > 5:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind not in "biuf":
            return {"type": "other"}
        return value.astype(float).tolist()
    if value is None or type(value) is bool or type(value) is str:
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in list(value)[:100_000]]
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:1000]}
    return {"type": "other"}


def main() -> None:
    cells_path, requests_fd, replies_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cpu, wall = float(sys.argv[4]), float(sys.argv[5])
    for fd in (requests_fd, replies_fd):
        os.set_inheritable(fd, False)  # no program the submission starts gets them
    requests = os.fdopen(requests_fd, "rb")
    replies = os.fdopen(replies_fd, "wb")
    with open(cells_path, encoding="utf-8") as f:
        cells = json.load(f)

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    errors = []
    for source in cells:
        result = None
        try:
            with Limits(cpu, wall):
                result = shell.run_cell(source, store_history=False)
        except BaseException as err:  # noqa: BLE001 - an interrupt between the cell's end and the limit's
            errors.append(error_name(err) or "?")
            continue
        err = result.error_before_exec or result.error_in_exec
        errors.append(None if err is None else (error_name(err) or "?"))
    scope = dict(shell.user_ns)  # the probe's cells share one copy of the submission's names

    try:
        os.kill(-1, signal.SIGKILL)  # every other process the submission left running
    except OSError:
        pass
    replies.write(b"ready\n")
    replies.flush()
    while True:
        line = requests.readline(MAX_REQUEST)
        if not line:
            return
        request = json.loads(line)
        answer = {"nonce": request["nonce"]}
        if request["op"] == "errors":
            answer["errors"] = errors
        elif request["op"] == "probe":
            answer["results"] = probe(scope, request["code"], request["inputs"], cpu, wall)
        replies.write(json.dumps(answer).encode() + b"\n")
        replies.flush()


def probe(scope: dict, code: str, inputs, cpu: float, wall: float) -> dict:
    """Run one of the checks' probe cells in ``scope`` (a copy of the submission's names): each
    ``record(name, compute)`` calls ``compute`` under the per-cell limits and keeps its result as
    plain data, or the built-in exception it raised."""
    out = {}

    def record(name, compute):
        try:
            with Limits(cpu, wall):
                value = compute()
            out[name] = plain(value)
        except BaseException as err:  # noqa: BLE001
            out[name] = {"error": error_name(err) or "?"}

    scope.update(INPUTS=inputs, record=record)
    try:
        exec(compile(code, "<probe>", "exec"), scope)  # noqa: S102
    except BaseException:  # noqa: S110, BLE001 - a failing probe cell fails the names it had still to record
        pass
    return out


if __name__ == "__main__":
    main()
