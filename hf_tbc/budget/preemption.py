"""Preemption: a SIGTERM handler that only raises a flag, read at the next agreement across ranks."""

from __future__ import annotations

import signal
import threading

PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM  # what a process ended by SIGTERM reports: most schedulers requeue on it


class SigtermFlag:
    """Sets ``received`` on SIGTERM while installed; puts the previous handler back on :meth:`restore`.

    The flag is never cleared during a run, so a signal that lands while the ranks exchange the clock is
    carried by the next exchange instead of being lost.
    """

    def __init__(self):
        self.received = False
        self._previous = None

    def install(self) -> None:
        self.received = False
        if threading.current_thread() is threading.main_thread():  # signal handlers live on the main thread only
            self._previous = signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum, frame) -> None:
        self.received = True

    def restore(self) -> None:
        """Safe to call more than once."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
