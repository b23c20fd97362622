"""Calls into metric libraries in a child process, so that their crashes cost one score, not the run.

Some metric libraries run native code that can kill the whole process: PESQ's C code
segfaults on long inputs (ludlows/PESQ#15), and an ONNX or SVM runtime can abort. A
:class:`CrashIsolation` runs each call in one long-lived child process (started with
``spawn``, so no thread or lock state is inherited): an exception in the call comes back
as its text, and a child that dies (a signal, an abort) or hangs past the time limit is
reported and replaced by a fresh one on the next call. Loaded models stay warm in the
child between calls.
"""
from __future__ import annotations

import multiprocessing
import signal
import traceback
from typing import Any, Callable


def _serve(conn, threads: int) -> None:
    """The child's loop: receive (fn, args), send back (True, result) or (False, error text)."""
    import torch
    torch.set_num_threads(threads)
    while True:
        try:
            job = conn.recv()
        except EOFError:          # the parent closed the pipe: we are done
            return
        fn, args = job
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # noqa: BLE001 (any library error is one failed score, reported)
            last = traceback.extract_tb(exc.__traceback__)[-1]
            reply = (False, f"{type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})")
        conn.send(reply)


def describe_exit(code: int | None) -> str:
    """A child's exit code as words: -11 -> 'killed by SIGSEGV'."""
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class CrashIsolation:
    """Run functions in a child process: ``call(fn, *args) -> (result, "")`` or ``(None, why)``.

    ``fn`` must be a module-level function (it is sent by name) and its arguments and
    result picklable. ``why`` is the exception's text, ``"crashed (killed by SIGSEGV)"``
    or ``"timed out after N s"``; the next call starts a new child after a crash or a
    time-out. ``threads``: torch threads in the child. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, threads: int = 1, timeout_s: float = 600.0):
        self.threads, self.timeout_s = threads, timeout_s
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self.threads), daemon=True)
        try:
            proc.start()
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        # kept only once started, so that close() after a failed start has nothing to undo
        # and the start's own error is the one the caller sees
        self._proc, self._conn = proc, parent

    def _drop(self, kill: bool) -> str:
        """Forget the child (killing it first if asked); return how it ended."""
        proc, self._proc = self._proc, None
        self._conn.close()
        if kill:
            proc.kill()
        proc.join(10)
        return describe_exit(proc.exitcode)

    def call(self, fn: Callable, *args) -> tuple[Any, str]:
        if self._proc is None:
            self._start()
        try:
            self._conn.send((fn, args))
            if not self._conn.poll(self.timeout_s):
                self._drop(kill=True)
                return None, f"timed out after {self.timeout_s:g} s"
            ok, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return None, f"crashed ({self._drop(kill=False)})"
        return (value, "") if ok else (None, value)

    def close(self) -> None:
        if self._proc is not None:
            self._conn.close()            # the child sees EOF and returns
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None

    def __enter__(self) -> "CrashIsolation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
