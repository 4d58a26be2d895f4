"""The crosspoint table of a bench's wiring: channel ids formatted on demand and parsed back."""
from __future__ import annotations

import pytest

from lab.config import SHIPPED_BENCHES, load_bench


@pytest.mark.parametrize("name", ["sim-crossbar35-sot", "sim-crossbar128-sot", "sim-film35"])
def test_every_crosspoint_is_the_wiring_s_channel_and_parses_back_to_its_bus_and_line(name: str) -> None:
    cfg = load_bench(SHIPPED_BENCHES / f"{name}.toml")
    lay, w = cfg.layout, cfg.wiring
    index = {line: k for k, line in enumerate(lay.lines)}
    expected = {}
    for bus, row in w.rows.items():  # the channel ids as the bench file defines them
        for line, spot in w.lines.items():
            prefix = f"{spot[0]}:{spot[1]}" if len(spot) == 3 else f"{spot[0]}"
            expected[(bus, index[line])] = f"{prefix}{row}{spot[-1]:02d}"
    assert dict(lay.crosspoint.items()) == expected
    assert list(lay.crosspoint) == list(expected)  # the bench file's order (archives list them so)
    assert len(lay.crosspoint) == len(expected) == len(set(expected.values()))
    for key, channel in expected.items():
        assert lay.owner[channel] == key and lay.owner_of(channel) == key and channel in lay.owner
    assert dict(lay.owner.items()) == {xp: key for key, xp in expected.items()}


def test_a_channel_id_not_wired_has_no_owner() -> None:
    lay = load_bench(SHIPPED_BENCHES / "sim-crossbar128-sot.toml").layout
    real = next(iter(lay.crosspoint.values()))  # "m1:1A01"
    assert lay.owner_of(real) is not None
    for bad in (real[1:], real + "0", real.replace("A", "Z"), real.replace(":1", ":9"), "m9:1A01", "1A01", "",
                real.lower(), 42, None, ("m1", "1A01")):
        assert lay.owner_of(bad) is None, bad
        assert bad not in lay.owner
    with pytest.raises(KeyError):
        lay.owner["m9:1A01"]
    with pytest.raises(KeyError):
        lay.crosspoint[("no such bus", 0)]
    with pytest.raises(KeyError):
        lay.crosspoint[(lay.buses[0], len(lay.lines))]
