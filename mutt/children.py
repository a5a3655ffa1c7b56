"""Child processes that die with their parent.

``mutt run`` starts ingest, the workers and the embedded servers as
children. If the parent is killed (SIGKILL, OOM killer), nothing else would
stop them: they would keep the port and the data directory, and a new
``mutt run`` could not start. Linux's ``PR_SET_PDEATHSIG`` makes the kernel
send each child a signal of our choosing the moment its parent dies, so a
SIGTERM lets workers finish their batch and Redis flush its AOF, and a SIGINT
is PostgreSQL's fast shutdown.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: ``sig`` is sent when the parent dies.

    ``Popen`` calls it after dropping privileges (``user=``), which would
    otherwise clear the setting. The parent may have died between ``fork``
    and this call; then the signal is sent at once.
    """
    parent = os.getpid()

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arm
