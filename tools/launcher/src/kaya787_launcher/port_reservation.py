"""Keep the platform's fixed ports out of the kernel's hands.

Dapr's gRPC ports (50001-50206 here) lie inside Linux's ephemeral range (32768-60999 by
default), so any outgoing connection may take one as its source port and hold it, in
TIME-WAIT, for a minute after it closes; the daprd that needs it then cannot bind.
`reserve` adds the ports to net.ipv4.ip_local_reserved_ports (when we may write it: root),
and `transient_holders` tells a port held by a passing connection (it will free itself)
from one a listener holds (another program).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"


def _ranges(text: str) -> set[int]:
    ports: set[int] = set()
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        low, _, high = part.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def ephemeral(ports: Iterable[int], proc: Path = PROC) -> list[int]:
    """Those of `ports` the kernel may hand out as source ports."""
    low, high = (int(v) for v in (proc / "sys/net/ipv4/ip_local_port_range").read_text().split())
    reserved = _ranges((proc / "sys/net/ipv4/ip_local_reserved_ports").read_text())
    return sorted({p for p in ports if low <= p <= high and p not in reserved})


def reserve(ports: Iterable[int], say: Callable[[str], None], proc: Path = PROC) -> list[int]:
    """Reserve the ephemeral ones among `ports`; returns those still exposed."""
    exposed = ephemeral(ports, proc)
    if not exposed:
        return []
    path = proc / "sys/net/ipv4/ip_local_reserved_ports"
    current = path.read_text().strip()
    try:
        path.write_text(",".join(filter(None, [current, *map(str, exposed)])))
    except OSError:
        say(
            f"note: ports {', '.join(map(str, exposed))} lie in the ephemeral port range; an"
            " outgoing connection may hold one for a minute (as root, add them to"
            " net.ipv4.ip_local_reserved_ports)"
        )
        return exposed
    say(f"reserved ports {', '.join(map(str, exposed))} (net.ipv4.ip_local_reserved_ports)")
    return []


def transient_holders(ports: Iterable[int], proc: Path = PROC) -> set[int]:
    """Of `ports`, those held on 127.0.0.1 by connections only (no listener): they free
    themselves when the connection's TIME-WAIT ends."""
    wanted = set(ports)
    listening: set[int] = set()
    connected: set[int] = set()
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in wanted:
                (listening if fields[3] == _LISTEN else connected).add(port)
    return connected - listening
