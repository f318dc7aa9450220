#!/usr/bin/env python3
"""Sets the disposition of every catchable signal (1-64), then execs a program.

usage: signal_state.py default|ignore PROGRAM [ARGS...]

  default  every signal SIG_DFL: a well-defined start, whatever the caller left behind
  ignore   every signal SIG_IGN: a hostile start for a daemon

Signals 32 and 33 are glibc's internal ones: glibc's sigaction() refuses them (and glibc's
posix_spawn leaves them SIG_IGN in every child it starts), so all signals are set with the raw
rt_sigaction system call.
"""
import ctypes
import os
import signal
import sys

SYS_rt_sigaction = {"x86_64": 13, "aarch64": 134}[os.uname().machine]


class KernelSigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_void_p), ("mask", ctypes.c_uint64)]


if len(sys.argv) < 3 or sys.argv[1] not in ("default", "ignore"):
    sys.exit(__doc__)
libc = ctypes.CDLL(None, use_errno=True)
action = KernelSigaction(0 if sys.argv[1] == "default" else 1, 0, None, 0)
for sig in range(1, 65):
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        continue
    if libc.syscall(SYS_rt_sigaction, sig, ctypes.byref(action), None, 8) != 0:
        sys.exit(f"rt_sigaction({sig}): {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[2], sys.argv[2:])
