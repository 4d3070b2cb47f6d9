"""How a benchmark ends when told to stop. SIGTERM, SIGINT and SIGHUP all take the path Ctrl-C takes
under `asyncio.run`: the benchmark's task is cancelled, so its `finally` blocks and context managers
stop what it started just as on a normal exit; then every process it started that still runs is
stopped by PID (bench/processes.py), and `Interrupted` tells the caller to exit 128 + the signal.

Without this SIGTERM's default action ended the benchmark at once and left its Temporal dev server
and stack processes (each in a session of its own, so the signal did not reach them) running.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from bench.processes import stop_tracked

T = TypeVar("T")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(Exception):
    """The benchmark was stopped by a signal; everything it started has been stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # as a shell reports a process ended by that signal


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` for a benchmark; raises `Interrupted` if a signal stopped it."""
    return asyncio.run(_until_signalled(main))


async def _until_signalled(main: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # a coroutine run by asyncio.run is a task
    received: list[int] = []
    benchmark_running = True

    def on_signal(signum: int) -> None:
        # Once, and only while the benchmark runs: the cleanup must not be cut short by a second Ctrl-C.
        if not received and benchmark_running:
            print(f"bench: {signal.Signals(signum).name}: stopping what it started", file=sys.stderr, flush=True)
            task.cancel()
        received.append(signum)

    # Handled in the event loop (its wakeup fd), not between two bytecodes of whatever code runs.
    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        result = await main
    except asyncio.CancelledError:
        if not received:
            raise
        raise Interrupted(received[0]) from None
    finally:
        benchmark_running = False
        # On every way out: whatever a cut-short `finally` (or a child started in a thread whose
        # result the cancellation dropped) left running. In the loop, before asyncio.run waits for
        # its threads: one may be blocked reading from such a child.
        await asyncio.to_thread(stop_tracked)
    if received:  # the benchmark absorbed the cancellation; it was still told to stop
        raise Interrupted(received[0])
    return result
