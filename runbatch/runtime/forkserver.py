"""``python -m runbatch.runtime.forkserver``: imports the runtime's libraries once, then forks a
runtime per shard.

Starting a runtime as a new interpreter costs a few seconds of CPU (pandas, pyarrow and the
model frameworks are imported again each time), more than a small shard's work. A process
executor starts this server once; each shard is then a ``fork()`` of it, which shares the
imported libraries and starts in milliseconds.

The worker talks to the server over a ``SOCK_SEQPACKET`` Unix socket (one JSON message per
packet, so no framing): a launch message carries the shard's environment, the model frameworks
its model needs, and, as ancillary data, the write end of the pipe that becomes the runtime's
stdout and stderr. The server imports a framework the first time a shard names it, before
forking, so the first PyTorch shard pays for ``import torch`` and the ones after it do not. The server answers
``{"pid": n}`` and later ``{"exit": n, "code": c}`` (negative for a signal, as ``subprocess``
reports it). The multiprocessing module's forkserver is not used: it cannot hand the child an
output pipe of the worker's, nor make it a session leader the worker can kill as a group.

The server forks from its only thread, so the children inherit no lock held by another thread.
It ends, and its runtimes with it, when the worker closes the socket or dies.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from runbatch.runtime import main as runtime_main

__all__ = ["FD_ENV", "MAX_MESSAGE", "die_with_parent", "serve"]

FD_ENV = "RUNBATCH_FORKSERVER_FD"
MAX_MESSAGE = 1 << 20  # a launch message is the shard's environment: a few kB

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """If the process that started this one dies (even by SIGKILL), this one is killed too.

    Linux ties this to the thread that forked, so a process calling it must have been started by a
    thread that lives as long as its parent needs it (the fork server forks from its only thread;
    the worker starts the fork server from a thread that lives as long as the executor)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _child(sock: socket.socket, wakeup: tuple[int, int], out: int, env: dict[str, str]) -> None:
    """Runs in the forked runtime: becomes a session of its own writing to ``out``, runs the shard."""
    code = 1
    try:
        os.setsid()
        die_with_parent()  # the server's only thread forked us: this ties us to the server
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        for fd in wakeup:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        os.environ.update(env)
        runtime_main.after_fork()
        code = runtime_main.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _import(modules: list[str]) -> None:
    for name in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the runtime imports it again and reports what is wrong
            pass
        sys.stdout.flush()  # whatever the import printed must not be repeated by every child
        sys.stderr.flush()


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Answer launch messages until the worker closes ``sock``."""
    runtime_main.preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() through the wakeup fd
    sys.stdout.flush()
    sys.stderr.flush()
    _send(sock, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap(sock)
        if sock.fileno() not in readable:
            continue
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
        if not data:
            return  # the worker closed its end
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            _send(sock, {"error": "a launch message carries exactly one output pipe"})
            continue
        launch = json.loads(data)
        _import(launch.get("preload", []))
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(fds[0])
            _send(sock, {"error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            _child(sock, (wake_r, wake_w), fds[0], launch["env"])
        os.close(fds[0])
        _send(sock, {"pid": pid})


def main() -> int:
    sock = socket.socket(fileno=int(os.environ.pop(FD_ENV)))
    die_with_parent()
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the worker went away; our runtimes die with us
    return 0


if __name__ == "__main__":
    sys.exit(main())
