"""Hosts of their own for nodes in tests: Linux network namespaces joined to this host by
veth pairs, in the test range 10.213.0.0/24, created and removed by the test.

Each namespace i gets the /30 10.213.0.(4i)/30: the host side is .4i+1, the namespace
side .4i+2. Traffic goes only to namespaces the test made; nothing is routed beyond
them. Needs root and iproute2 (`ip`); `namespaces_unavailable()` says why not, for a
clear skip.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

TEST_NETWORK = ipaddress.IPv4Network("10.213.0.0/24")


@dataclass(frozen=True)
class NamespaceHost:
    namespace: str
    host_address: str
    """This machine's end of the veth pair."""
    address: str
    """The namespace's own address: where its node listens."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None if they can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CI runs as root)"
    probe = f"npcs-probe-{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return f"`ip netns add` failed here ({detail.strip()}); a container without CAP_SYS_ADMIN?"
    _ip("netns", "delete", probe)
    return None


@contextmanager
def namespace_hosts(count: int) -> Iterator[list[NamespaceHost]]:
    """`count` namespaces, each with its own address, removed on exit (also on failure)."""
    tag = uuid.uuid4().hex[:6]
    subnets = list(TEST_NETWORK.subnets(new_prefix=30))[:count]
    made: list[str] = []
    links: list[str] = []
    hosts: list[NamespaceHost] = []
    try:
        for index, subnet in enumerate(subnets):
            namespace = f"npcs-{tag}-{index}"
            outside, inside = f"nv{tag}{index}h", f"nv{tag}{index}n"  # <= 15 characters
            host_address, address = (str(a) for a in list(subnet.hosts())[:2])
            _ip("netns", "add", namespace)
            made.append(namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            links.append(outside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("addr", "add", f"{host_address}/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/30", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            hosts.append(NamespaceHost(namespace, host_address, address))
        yield hosts
    finally:
        for namespace in made:  # deleting a namespace deletes the veth pairs inside it
            subprocess.run(["ip", "netns", "delete", namespace], check=False, timeout=30)
        for link in links:  # a pair not yet moved in: gone already, or removed here
            subprocess.run(["ip", "link", "delete", link], check=False, capture_output=True)
