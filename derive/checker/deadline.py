"""A time bound on a SymPy computation, which cannot be interrupted from outside."""

from __future__ import annotations

import multiprocessing
import signal
import threading


def within(seconds: float, compute):
    """``compute()`` (a picklable result) if it finishes within ``seconds``, else TimeoutError.

    SymPy cannot be interrupted from outside, so: in the main thread a SIGALRM timer raises
    inside it; in any other thread (signals reach only the main thread) it runs in a forked
    worker process that is killed at the deadline. Without fork, the answer is a timeout.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _time_limit(seconds):
            return compute()
    if "fork" not in multiprocessing.get_all_start_methods():
        raise TimeoutError
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_report, args=(send, compute), daemon=True)
    worker.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise TimeoutError
        ok, value = receive.recv()
    except EOFError:  # the worker died
        raise TimeoutError from None
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join()
        receive.close()
    if not ok:
        raise TimeoutError
    return value


def _report(send, compute):
    """In the worker: send (True, compute()) back, or (False, None) if it raised."""
    try:
        send.send((True, compute()))
    except Exception:
        send.send((False, None))


class _time_limit:
    """A SIGALRM-bounded block; only for the main thread (see ``within``)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def _raise(self, *_):
        raise TimeoutError

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._raise)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False
