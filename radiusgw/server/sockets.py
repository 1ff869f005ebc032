"""UDP sockets shared by worker processes, and spreading one NAS over all of them.

Every worker has its own socket bound to the same address and port with SO_REUSEPORT. The
kernel's default choice hashes the 4-tuple, so a carrier LAC sending from one source port would
land on one worker. Instead a classic BPF program picks the socket by packet content: the first
4 octets of the Request Authenticator (offset 4 of the UDP payload) modulo the number of
workers. A retransmission carries the same authenticator, so it reaches the worker whose
duplicate cache (RFC 5080 §2.2.2) holds the answer.

The program's return value is an index into the reuse group in bind order, so the supervisor
creates and binds every socket before any worker starts and keeps them open across a worker's
restart: the order never changes.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket

SO_ATTACH_REUSEPORT_CBPF = 51  # include/uapi/asm-generic/socket.h

# struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }
_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
_BPF_ALU_MOD_K = 0x04 | 0x90 | 0x00
_BPF_RET_A = 0x06 | 0x10


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def attach_spread_by_authenticator(sock: socket.socket, workers: int) -> None:
    """Attach the content-based spreading program to ``sock``'s reuse group."""
    program = (_SockFilter * 3)(
        _SockFilter(_BPF_LD_W_ABS, 0, 0, 4),  # A = payload[4:8], the authenticator's start
        _SockFilter(_BPF_ALU_MOD_K, 0, 0, workers),  # A = A % workers
        _SockFilter(_BPF_RET_A, 0, 0, 0),  # the index of the socket in the group
    )
    fprog = _SockFprog(3, ctypes.cast(program, ctypes.POINTER(_SockFilter)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))


def udp_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # A deep receive buffer absorbs bursts (a LAC's reconnect storm) instead of dropping.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def worker_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """``workers`` sockets on one port, bound in order, spread by authenticator when > 1.

    Port 0 asks the OS for a free port; the later sockets then bind the one it gave the first.
    """
    first = udp_socket(host, port, reuse_port=True)
    socks = [first]
    bound_port = first.getsockname()[1]
    try:
        for _ in range(workers - 1):
            socks.append(udp_socket(host, bound_port, reuse_port=True))
        if workers > 1:
            attach_spread_by_authenticator(first, workers)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks
