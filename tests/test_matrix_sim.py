"""The simulated 707B/708B: TSP parsing, relay state on the simulated bench, settling on the
virtual clock, refusals into the error queue."""
from __future__ import annotations

import pytest

from sim_backend import SimulatedBench, film
from sim_backend.instruments.keithley707b import Keithley707B, Keithley708B

WIRING = {"1A01": ("drive", "C0"), "1B02": ("sense", "C1"), "1C03": ("guard", "C2"), "1C04": ("guard", "C3")}


@pytest.fixture
def bench():
    return SimulatedBench(film(4), "film-amr", seed=3, buses=["drive", "sense", "guard"], crosspoints=WIRING)


def ask(m: Keithley707B, message: str) -> str | None:
    r = m.respond(message)
    return r.data.decode().rstrip("\n") if r.action == "reply" else None


def errors(m: Keithley707B) -> list[tuple[int, str]]:
    out = []
    while m.error_queue:
        out.append(m.next_error())
    return out


def test_close_and_open_drive_the_bench_relays_and_cost_settling_time(bench):
    m = Keithley707B("matrix", bench, cards=2, settling_time_s=0.003)
    t0 = bench.clock.now
    ask(m, 'channel.close("1A01,1B02")')
    assert bench.closed() == {"1A01", "1B02"}
    assert bench.clock.now - t0 == pytest.approx(0.003)
    assert ask(m, 'print(channel.getclose("allslots"))') == "1A01;1B02"
    ask(m, 'channel.open("1A01")')
    assert bench.closed() == {"1B02"}
    assert bench.clock.now - t0 == pytest.approx(0.006)
    assert bench.relay_operations == 3
    ask(m, 'channel.open("allslots")')
    assert bench.closed() == set()
    assert ask(m, 'print(channel.getclose("allslots"))') == "nil"
    assert errors(m) == []


def test_unwired_crosspoints_click_but_join_nothing(bench):
    m = Keithley707B("matrix", bench, cards=2)
    ask(m, 'channel.close("2H12,1A01")')
    assert ask(m, 'print(channel.getclose("allslots"))') == "1A01;2H12"
    assert bench.closed() == {"1A01"}


def test_exclusiveclose_breaks_before_making(bench):
    m = Keithley707B("matrix", bench, settling_time_s=0.002)
    ask(m, 'channel.close("1A01,1B02")')
    t0 = bench.clock.now
    ask(m, 'channel.exclusiveclose("1B02,1C03")')
    assert bench.closed() == {"1B02", "1C03"}
    assert bench.clock.now - t0 == pytest.approx(0.004)  # open, settle, then close, settle
    ask(m, "channel.connectrule = channel.OFF")
    t0 = bench.clock.now
    ask(m, 'channel.exclusiveclose("1A01")')
    assert bench.closed() == {"1A01"}
    assert bench.clock.now - t0 == pytest.approx(0.002)  # both at once
    ask(m, 'channel.exclusiveclose("")')
    assert bench.closed() == set()


def test_connect_rule_reads_back_as_a_tsp_number(bench):
    m = Keithley707B("matrix", bench)
    assert ask(m, "print(channel.connectrule)") == "1.00000e+00"  # BREAK_BEFORE_MAKE
    ask(m, "channel.connectrule = channel.MAKE_BEFORE_BREAK")
    assert ask(m, "print(channel.connectrule)") == "2.00000e+00"
    ask(m, "channel.connectrule = 7")
    assert errors(m)[0][0] == -222


def test_ranges_and_slots(bench):
    m = Keithley707B("matrix", None, cards=2)
    ask(m, 'channel.close("1A01:1B03")')
    assert ask(m, 'print(channel.getclose("slot1"))') == "1A01;1A02;1A03;1B01;1B02;1B03"
    assert ask(m, 'print(channel.getclose("slot2"))') == "nil"
    ask(m, 'channel.open("slot1")')
    assert ask(m, 'print(channel.getclose("allslots"))') == "nil"


def test_forbidden_channels_refuse_to_close_and_change_nothing(bench):
    m = Keithley707B("matrix", bench)
    ask(m, 'channel.setforbidden("1A01")')
    assert ask(m, 'print(channel.getforbidden("allslots"))') == "1A01"
    ask(m, 'channel.close("1B02,1A01")')
    assert bench.closed() == set()
    (code, message), = errors(m)
    assert code == -221 and "1A01" in message and "forbidden" in message
    ask(m, 'channel.clearforbidden("allslots")')
    ask(m, 'channel.close("1A01")')
    assert bench.closed() == {"1A01"}


@pytest.mark.parametrize(
    "command, code",
    [
        ('channel.close("1I01")', -224),
        ('channel.close("1A13")', -224),
        ('channel.close("7A01")', -222),
        ('channel.close("3A01")', -222),  # slot without a card
        ('channel.close("allslots")', -224),  # close refuses slot lists
        ('channel.close("1A01,,1B02")', -224),
        ("channel.close(1)", -224),
        ("channel.close(", -285),
        ("channel.shut()", -286),
        ("beeper.beep(1, 440)", -286),
        ("*FOO", -113),
    ],
)
def test_bad_commands_change_nothing_and_queue_an_error(bench, command, code):
    m = Keithley707B("matrix", bench, cards=2)
    ask(m, 'channel.close("1A01")')
    ask(m, command)
    assert bench.closed() == {"1A01"}
    assert [c for c, _ in errors(m)] == [code]


def test_error_queue_over_tsp(bench):
    m = Keithley707B("matrix", bench)
    ask(m, 'channel.close("9Z99")')
    assert ask(m, "print(errorqueue.count)") == "1.00000e+00"
    code, message, severity, node = ask(m, "print(errorqueue.next())").split("\t")
    assert float(code) == -224 and "9Z99" in message
    assert ask(m, "print(errorqueue.next())").split("\t")[:2] == ["0.00000e+00", "Queue Is Empty"]
    ask(m, "bogus()")
    ask(m, "errorqueue.clear()")
    assert ask(m, "print(errorqueue.count)") == "0.00000e+00"


def test_reset_opens_everything_and_clears_forbidden(bench):
    m = Keithley707B("matrix", bench)
    ask(m, 'channel.close("1A01,1B02") channel.setforbidden("1C03")')
    ask(m, "*RST")
    assert bench.closed() == set()
    assert ask(m, 'print(channel.getforbidden("allslots"))') == "nil"
    assert ask(m, "*OPC?") == "1"
    assert "Model 707B" in ask(m, "*IDN?")


def test_708b_has_one_slot(bench):
    m = Keithley708B("m", bench)
    assert "Model 708B" in ask(m, "*IDN?")
    ask(m, 'channel.close("2A01")')
    assert errors(m)[0][0] == -222
    with pytest.raises(ValueError, match="1..1"):
        Keithley708B("m", bench, cards=2)
    with pytest.raises(ValueError, match="1..6"):
        Keithley707B("m", bench, cards=7)
