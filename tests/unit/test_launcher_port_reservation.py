"""The launcher keeps its fixed ports out of the ephemeral range, and tells a port a passing
connection holds (wait) from one a listener holds (refuse)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kaya787_launcher import port_reservation

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def _proc(tmp: Path, reserved: str = "", tcp: list[tuple[int, str]] | None = None) -> Path:
    (tmp / "sys/net/ipv4").mkdir(parents=True)
    (tmp / "sys/net/ipv4/ip_local_port_range").write_text("32768\t60999\n")
    (tmp / "sys/net/ipv4/ip_local_reserved_ports").write_text(reserved + "\n")
    (tmp / "net").mkdir()
    rows = [
        f"   0: 0100007F:{port:04X} 0100007F:1FA7 {state} 00000000:00000000 00:00 0 0\n"
        for port, state in tcp or []
    ]
    (tmp / "net/tcp").write_text(HEADER + "".join(rows))
    return tmp


def test_only_ports_in_the_ephemeral_range_and_not_yet_reserved_are_exposed(
    tmp_path: Path,
) -> None:
    proc = _proc(tmp_path, reserved="50000-50100,50200")
    assert port_reservation.ephemeral([8080, 50001, 50200, 50201, 61000], proc) == [50201]


def test_reserving_keeps_what_was_reserved_and_adds_ours(tmp_path: Path) -> None:
    proc = _proc(tmp_path, reserved="40000")
    said: list[str] = []
    assert port_reservation.reserve([8080, 50200, 50201], said.append, proc) == []
    path = proc / "sys/net/ipv4/ip_local_reserved_ports"
    assert path.read_text() == "40000,50200,50201"
    assert port_reservation.ephemeral([50200, 50201], proc) == []
    assert "50200, 50201" in said[0]


def test_without_the_right_to_reserve_it_says_which_ports_stay_exposed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _proc(tmp_path)

    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)  # not root: the sysctl is not ours
    said: list[str] = []
    assert port_reservation.reserve([8080, 50200], said.append, proc) == [50200]
    assert "50200" in said[0]
    assert "ip_local_reserved_ports" in said[0]


def test_a_port_held_by_a_passing_connection_is_told_from_a_listeners(tmp_path: Path) -> None:
    time_wait, established, listen = "06", "01", "0A"
    proc = _proc(
        tmp_path,
        tcp=[(50200, time_wait), (50201, established), (50202, listen), (50203, time_wait)],
    )
    (proc / "net/tcp").write_text(
        (proc / "net/tcp").read_text()
        + f"   9: 0100007F:{50203:04X} 00000000:0000 {listen} 00000000:00000000 00:00 0 0\n"
    )
    assert port_reservation.transient_holders([50200, 50201, 50202, 50203, 50204], proc) == {
        50200,
        50201,
    }
