"""Run a lab file and turn the Lab it makes into the model.

The file is compiled under the name the user gave, so every message can say `lab.py:14: ...`. Errors in the
user's code become diagnostics that point at the user's own line, never a netgen traceback.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import traceback

from . import dsl, model
from .model import Diagnostic, Loc


class LoadError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


class _TimedOut(BaseException):
    """Raised into the lab's code when its time is up; a BaseException, so `except Exception` in a lab lets it by."""


def _time_up(signum, frame):
    raise _TimedOut


def _theirs(tb) -> list[traceback.FrameSummary]:
    """The traceback's frames outside netgen: the lab's, its helpers' and what they called."""
    netgen_dir = os.path.dirname(os.path.abspath(__file__))
    return [f for f in traceback.extract_tb(tb) if os.path.dirname(os.path.abspath(f.filename)) != netgen_dir]


def _user_frame(tb, path: str) -> Loc | None:
    """The innermost traceback frame in the lab file itself, or failing that outside netgen."""
    frames = _theirs(tb)
    for frame in reversed(frames):
        if frame.filename == path:
            return Loc(path, frame.lineno or 0)
    return Loc(frames[-1].filename, frames[-1].lineno or 0) if frames else None


def _timeout(tb, path: str, timeout: float) -> Diagnostic:
    """At the lab's own line, saying which line was running (in a helper module, say) when time was up."""
    message = f"the lab file did not finish within {timeout:g} s"
    frames = _theirs(tb)
    if frames:  # empty only if the alarm came just as the lab finished
        last = frames[-1]
        message += f" (it was running {'line ' if last.filename == path else last.filename + ':'}{last.lineno})"
    return Diagnostic("error", message, _user_frame(tb, path))


def load(path: str, timeout: float | None = None) -> model.Lab:
    """Execute the lab file at `path` and return its model, or raise LoadError with what went wrong.

    A lab still running after `timeout` seconds is stopped (by SIGALRM, so only in the main thread)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LoadError([Diagnostic("error", f"cannot read lab file {path}: {e.strerror}")]) from None
    try:
        code = compile(data, path, "exec")
    except SyntaxError as e:
        raise LoadError([Diagnostic("error", f"syntax error: {e.msg}", Loc(path, e.lineno or 0))]) from None
    except ValueError as e:  # e.g. NUL bytes
        raise LoadError([Diagnostic("error", f"not a Python lab file: {e}", Loc(path, 1))]) from None

    dsl.made.clear()
    namespace = {"__name__": "__netgen_lab__", "__file__": path}
    lab_dir = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, lab_dir)  # like `python lab.py`: helper modules next to the lab can be imported
    imported = set(sys.modules)
    timed = bool(timeout) and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _time_up) if timed else None
    try:
        try:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            exec(code, namespace)
        finally:  # the alarm may still fire in here, before it is cancelled: the outer try reports it
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)  # None: set in C
    except _TimedOut as e:
        raise LoadError([_timeout(e.__traceback__, path, timeout)]) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # the user's code failed: point at their line, not ours
        where = _user_frame(e.__traceback__, path)
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise LoadError([Diagnostic("error", f"the lab file raised {text}", where)]) from None
    finally:
        sys.path.remove(lab_dir)
        # Forget the lab's own helper modules, so that the next lab loaded in this process gets its own.
        for name in set(sys.modules) - imported:
            if os.path.dirname(os.path.abspath(getattr(sys.modules[name], "__file__", None) or "/")) == lab_dir:
                del sys.modules[name]
    labs = list(dsl.made)
    dsl.made.clear()

    if not labs:
        raise LoadError([Diagnostic("error", 'defines no lab: add `lab = Lab("name")` (from netgen import Lab)',
                                    Loc(path, 1))])
    if len(labs) > 1:
        raise LoadError([Diagnostic("error", f"a lab file defines one lab, this one makes {len(labs)}; "
                                    f"the first is at line {labs[0]._loc.line}", labs[1]._loc)])
    return labs[0].to_model(path, hashlib.sha256(data).hexdigest())
