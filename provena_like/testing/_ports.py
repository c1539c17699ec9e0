"""Loopback ports and unix sockets of a ``weed mini`` process (used by :mod:`.seaweed`)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import stat
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path

# weed 4.48's embedded admin worker dials the admin gRPC server at ``admin.port + 10000``
# whatever ``-admin.port.grpc`` says, so the two ports must keep that offset.
_ADMIN_GRPC_OFFSET = 10000
_MAX_PORT = 65535
_MIN_PORT = 1024
_PICK_LOW = 20000
_PICK_TRIES = 200


@dataclass(frozen=True)
class _Ports:
    """Every TCP port one ``weed mini`` process listens on."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    admin: int
    admin_grpc: int
    metrics: int

    def all(self) -> tuple[int, ...]:
        """Return all ports, in field order."""
        return tuple(int(p) for p in astuple(self))


def _socket_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@contextlib.contextmanager
def _bound(host: str, port: int) -> Iterator[int]:
    """Bind ``host:port`` (0: any free port) like Go's listener does; yield the bound port."""
    sock = socket.socket(_socket_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _port_is_free(host: str, port: int) -> bool:
    try:
        with _bound(host, port):
            return True
    except OSError:
        return False


def _listen_port_range() -> tuple[int, int]:
    """The ports to pick listeners from: below the OS's ephemeral (outgoing) range.

    Outgoing connections take their local port from the ephemeral range, so a port picked
    there can be taken by any client socket in the short window before ``weed`` binds it.
    Below that range, only another listener choosing the very same port can interfere.

    Returns:
        ``(low, high)``, high exclusive; empty (``low >= high``) if there is no room.
    """
    ephemeral_low = 49152  # IANA dynamic range, used by macOS and Windows
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        ephemeral_low = int(text.split()[0])
    return _PICK_LOW, min(ephemeral_low, _MAX_PORT + 1)


def _pick_ports(host: str, s3_port: int | None) -> _Ports:
    """Choose distinct free ports for everything ``weed mini`` listens on.

    The ports are held (bound) together while picking, so they are distinct; they are released
    before returning, so another process may still take one before ``weed`` binds it:
    :meth:`SeaweedS3.start` retries with fresh ports when that happens.
    """
    low, high = _listen_port_range()
    rng = random.SystemRandom()
    with contextlib.ExitStack() as stack:
        taken: set[int] = set() if s3_port is None else {s3_port}

        def try_hold(port: int) -> bool:
            if not _MIN_PORT <= port <= _MAX_PORT or port in taken:
                return False
            try:
                stack.enter_context(_bound(host, port))
            except OSError:
                return False
            taken.add(port)
            return True

        def hold() -> int:
            if high - low > _PICK_TRIES:
                for _ in range(_PICK_TRIES):
                    port = rng.randrange(low, high)
                    if try_hold(port):
                        return port
            port = stack.enter_context(_bound(host, 0))  # let the kernel choose
            taken.add(port)
            return port

        def hold_admin_pair() -> tuple[int, int]:
            for _ in range(_PICK_TRIES):
                if high - low > _ADMIN_GRPC_OFFSET + _PICK_TRIES:
                    admin = rng.randrange(low, high - _ADMIN_GRPC_OFFSET)
                    if try_hold(admin) and try_hold(admin + _ADMIN_GRPC_OFFSET):
                        return admin, admin + _ADMIN_GRPC_OFFSET
                    continue
                candidate = hold()  # no room below the ephemeral range: use the kernel's pick
                if try_hold(candidate + _ADMIN_GRPC_OFFSET):
                    return candidate, candidate + _ADMIN_GRPC_OFFSET
                if try_hold(candidate - _ADMIN_GRPC_OFFSET):
                    return candidate - _ADMIN_GRPC_OFFSET, candidate
            raise RuntimeError("could not find two free loopback ports 10000 apart")

        s3 = s3_port if s3_port is not None else hold()
        others = [hold() for _ in range(7)]
        admin, admin_grpc = hold_admin_pair()
        metrics = hold()
    s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = others
    return _Ports(
        s3=s3,
        s3_grpc=s3_grpc,
        master=master,
        master_grpc=master_grpc,
        volume=volume,
        volume_grpc=volume_grpc,
        filer=filer,
        filer_grpc=filer_grpc,
        admin=admin,
        admin_grpc=admin_grpc,
        metrics=metrics,
    )


_SOCKET_NAME = re.compile(r"^seaweedfs-[a-z0-9]+(?:-grpc)?-(\d+)\.sock$")


def _find_sockets(ports: Iterable[int], directories: Iterable[Path]) -> list[Path]:
    """Unix sockets named ``seaweedfs-<service>[-grpc]-<port>.sock`` for the given ports."""
    wanted = {str(p) for p in ports}
    found: list[Path] = []
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = _SOCKET_NAME.match(entry.name)
            if match is None or match.group(1) not in wanted:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(entry.lstat().st_mode):
                    found.append(entry)
    return sorted(found)


def _unix_sockets_of(pid: int) -> list[Path]:
    """The ``seaweedfs-*.sock`` unix sockets a live process listens on (Linux; else ``[]``).

    ``weed`` silently moves a gRPC listener to another port when the one it was given is taken
    (``gRPC port N for S3 is not available, finding alternative...``), and names the socket
    after the new port, so the ports we assigned don't always name every socket it makes.
    """
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        found: list[Path] = []
        with open(f"/proc/{pid}/net/unix", encoding="utf-8", errors="replace") as table:
            next(table, None)  # header
            for line in table:
                columns = line.split()
                if len(columns) >= 8 and columns[6] in inodes:
                    path = Path(columns[7])
                    if path.is_absolute() and _SOCKET_NAME.match(path.name):
                        found.append(path)
        return sorted(set(found))
    except OSError:
        return []


def _remove_sockets(ports: Iterable[int], directories: Iterable[Path]) -> None:
    for path in _find_sockets(ports, directories):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
