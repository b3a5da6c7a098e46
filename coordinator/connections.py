"""What a session keeps open to its nodes: one mTLS channel per node, and the threads
that call them.

Opening a channel costs the coordinator a TLS handshake (and gRPC's channel set-up), more
CPU than the calls made on it. A command that asks the nodes more than once in one
process (the demo's questions, a library user's queries) opens each node's channel on
first use and keeps it for the session's later fan-outs; the fan-out's worker threads are
likewise started once. Every call still goes over the node's mutually authenticated
channel: a connection that drops is re-established by gRPC with a new handshake.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from coordinator.client import ClientCredentials, NodeChannel
from coordinator.partnership import NodeEntry


class NodeConnections:
    """Channels by node address, opened on first use; worker threads. Close when done."""

    def __init__(self, credentials: ClientCredentials) -> None:
        self._credentials = credentials
        self._channel_credentials: grpc.ChannelCredentials | None = None
        self._channels: dict[str, NodeChannel] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._lock = threading.Lock()
        self._closed = False

    def channel(self, entry: NodeEntry) -> NodeChannel:
        """The open channel to `entry`'s address (opened now if it is the first call)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the session's connections are closed")
            opened = self._channels.get(entry.address)
            if opened is None:
                if self._channel_credentials is None:
                    self._channel_credentials = self._credentials.channel_credentials()
                opened = NodeChannel.open(entry.address, self._channel_credentials)
                self._channels[entry.address] = opened
            return opened

    def drop(self, entry: NodeEntry) -> None:
        """Close and forget `entry`'s channel (the next call opens a new one)."""
        with self._lock:
            opened = self._channels.pop(entry.address, None)
        if opened is not None:
            opened.channel.close()

    def workers(self, count: int) -> ThreadPoolExecutor:
        """A pool of at least `count` threads, started once and reused by later fan-outs."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the session's connections are closed")
            pool = self._pool
            if pool is None or self._pool_size < count:
                if pool is not None:
                    pool.shutdown(wait=False)  # its threads end once their work is done
                pool = self._pool = ThreadPoolExecutor(
                    max_workers=count, thread_name_prefix="npcs-node"
                )
                self._pool_size = count
            return pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        for opened in channels:
            opened.channel.close()
