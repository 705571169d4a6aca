"""Where the portal's Unix socket lives: a private directory (0700: only this user connects) of
this process in the temporary directory, and a path to its socket that always fits.

A Unix socket's path is limited to `sun_path` (108 bytes with its NUL on Linux, 104 on macOS), so
a long `TMPDIR` (a CI workspace, a build sandbox) cannot hold the socket under its own name. The
directory stays where `TMPDIR` says; on Linux the socket is then reached through
`/proc/self/fd/<n>/portal.sock`, `<n>` a descriptor of that directory this process holds open
(about 30 bytes, whatever the directory's length; the kernel resolves it as the directory
itself, so its 0700 still guards it). Without `/proc` the directory is made in a short one
(`/tmp`, `/var/tmp`) instead. An abstract socket would fit too, but anyone on the host could
connect to it: the portal believes the headers the gateway sets, so its socket must be private.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from dataclasses import dataclass

from gateway.listeners import ListenError

SOCKET_NAME = "portal.sock"
# the longest path bind() takes: sun_path less its terminating NUL
MAX_PATH = 103 if sys.platform == "darwin" else 107
_FD_DIR = "/proc/self/fd"
_SHORT_DIRS = ("/tmp", "/var/tmp")
# `gateway-portal-<pid>-<random>` in the temporary directory: the pid tells a stale one
_SOCKET_DIR = re.compile(r"gateway-portal-([0-9]{1,10})-[^/]+")


def fits(path: str) -> bool:
    return len(os.fsencode(path)) <= MAX_PATH


@dataclass(slots=True)
class SocketDir:
    """The directory (`folder`) and the path bind and connect use (`path`; in `folder`, or through
    the descriptor `fd` of it this process keeps open until `remove`)."""

    folder: str
    path: str
    fd: int | None = None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def make_socket_dir(tmp: str | None = None) -> SocketDir:
    """A fresh private directory for this process's socket (stale ones of dead processes swept)."""
    tmp = tmp or tempfile.gettempdir()
    folder = _private_dir(tmp)
    path = os.path.join(folder, SOCKET_NAME)
    if fits(path):
        return SocketDir(folder, path)
    if os.path.isdir(_FD_DIR):
        fd = os.open(folder, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)  # not inherited
        return SocketDir(folder, f"{_FD_DIR}/{fd}/{SOCKET_NAME}", fd)
    shutil.rmtree(folder, ignore_errors=True)
    for short in _SHORT_DIRS:
        if short != tmp and os.path.isdir(short) and fits(os.path.join(short, "gateway-portal-4294967295-xxxxxxxx",
                                                                      SOCKET_NAME)):
            try:
                folder = _private_dir(short)
            except OSError:
                continue
            return SocketDir(folder, os.path.join(folder, SOCKET_NAME))
    raise ListenError(f"cannot place the portal's socket: {path} is longer than a Unix socket's {MAX_PATH} "
                      "bytes and no shorter temporary directory is writable; set TMPDIR to a shorter one")


def _private_dir(tmp: str) -> str:
    sweep_stale(tmp)
    return tempfile.mkdtemp(prefix=f"gateway-portal-{os.getpid()}-", dir=tmp)  # 0700


def sweep_stale(tmp: str) -> None:
    """Removes the socket directories of this user's gateway processes that are gone: a worker
    killed with SIGKILL never ran `stop`, and each restart would leave one more. A directory is
    stale when the pid in its name runs no process and nothing listens on its socket (a process
    in another pid namespace sharing this directory still does); another user's or a link stays."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        match = _SOCKET_DIR.fullmatch(name)
        if match is None or _running(int(match.group(1))):
            continue
        path = os.path.join(tmp, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _listening(path):
            shutil.rmtree(path, ignore_errors=True)


def _listening(folder: str) -> bool:
    """Whether something listens on the socket in `folder` (reached as `make_socket_dir` would)."""
    path, fd = os.path.join(folder, SOCKET_NAME), None
    try:
        if not fits(path) and os.path.isdir(_FD_DIR):
            fd = os.open(folder, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)
            path = f"{_FD_DIR}/{fd}/{SOCKET_NAME}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or no pid at all: left alone)
    return True
