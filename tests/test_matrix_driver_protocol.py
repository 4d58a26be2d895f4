"""Byte-exact command tests of the 707B/708B driver (pymeasure expected_protocol)."""
from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import BadReply, InstrumentReportedError
from drivers.keithley707b import ChannelError, Keithley707B, Keithley708B

IDN = "Keithley Instruments Inc., Model 707B, 04071990, 1.0.0"
CONNECT = [
    ("*IDN?", IDN),
    ("errorqueue.clear()", None),
    ("channel.connectrule = channel.BREAK_BEFORE_MAKE", None),
    ("*OPC?", "1"),
    ("print(errorqueue.count)", "0.00000e+00"),
]
DONE = [("*OPC?", "1"), ("print(errorqueue.count)", "0.00000e+00")]


def test_connect_sets_break_before_make_and_touches_no_relay():
    with expected_protocol(Keithley707B, CONNECT) as m:
        assert m.cards == 6
        assert m.settling_time_s == pytest.approx(0.003)


def test_connect_refuses_another_instrument():
    with pytest.raises(BadReply, match="not a Keithley 707B"):
        with expected_protocol(Keithley707B, [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,1,1")]):
            pass


def test_close_sorts_dedupes_and_waits_for_completion():
    with expected_protocol(
        Keithley707B, CONNECT + [('channel.close("1A01,1B02,2H12")', None)] + DONE, cards=2
    ) as m:
        m.close(["1b02", "1A01", "2H12", "1A01"])


def test_open_open_all_and_exclusive_close():
    with expected_protocol(
        Keithley707B,
        CONNECT
        + [('channel.open("1C03")', None)] + DONE
        + [('channel.open("allslots")', None)] + DONE
        + [('channel.exclusiveclose("1A01,1C03")', None)] + DONE
        + [('channel.exclusiveclose("")', None)] + DONE,
    ) as m:
        m.open(["1C03"])
        m.open_all()
        m.exclusive_close(["1C03", "1A01"])
        m.exclusive_close([])


def test_empty_change_sends_nothing():
    with expected_protocol(Keithley707B, CONNECT) as m:
        m.close([])
        m.open(set())


def test_closed_parses_list_and_nil():
    with expected_protocol(
        Keithley707B,
        CONNECT
        + [('print(channel.getclose("allslots"))', "1A01;1B02")]
        + [('print(channel.getclose("allslots"))', "nil")],
    ) as m:
        assert m.closed() == {"1A01", "1B02"}
        assert m.closed() == set()


def test_closed_rejects_garbage():
    with expected_protocol(
        Keithley707B, CONNECT + [('print(channel.getclose("allslots"))', "xx;yy")]
    ) as m:
        with pytest.raises(BadReply, match="closed-channel list"):
            m.closed()


def test_forbidden_channels():
    with expected_protocol(
        Keithley707B,
        CONNECT
        + [('channel.setforbidden("1A01,1A02")', None)] + DONE
        + [('print(channel.getforbidden("allslots"))', "1A01;1A02")]
        + [('channel.clearforbidden("1A02")', None)] + DONE
        + [('channel.clearforbidden("allslots")', None)] + DONE
        + [('print(channel.getforbidden("allslots"))', "nil")],
    ) as m:
        m.set_forbidden(["1A02", "1A01"])
        assert m.forbidden() == {"1A01", "1A02"}
        with pytest.raises(ChannelError, match="forbidden"):
            m.close(["1A01"])  # refused before anything is sent
        m.clear_forbidden(["1A02"])
        m.clear_forbidden()
        assert m.forbidden() == set()


@pytest.mark.parametrize(
    "bad", ["1I01", "1A13", "1A00", "0A01", "7A01", "A01", "1A1", "", "1A01 1B01", 101]
)
def test_invalid_channel_ids_are_refused_before_sending(bad):
    with expected_protocol(Keithley707B, CONNECT) as m:
        with pytest.raises(ChannelError, match="channel"):
            m.close([bad] if bad != "" else [" "])


def test_slot_beyond_installed_cards():
    with expected_protocol(Keithley707B, CONNECT, cards=2) as m:
        with pytest.raises(ChannelError, match="only slots 1..2"):
            m.close(["3A01"])


def test_queued_error_raises_typed_error():
    with expected_protocol(
        Keithley707B,
        CONNECT
        + [('channel.close("1A01")', None), ("*OPC?", "1"), ("print(errorqueue.count)", "1.00000e+00"),
           ("print(errorqueue.next())",
            "-2.21000e+02\tSettings conflict: channel 1A01 is forbidden to close\t2.00000e+00\t0.00000e+00")],
    ) as m:
        with pytest.raises(InstrumentReportedError) as info:
            m.close(["1A01"])
    assert info.value.code == -221
    assert "forbidden" in info.value.message
    assert info.value.command == 'channel.close("1A01")'


def test_connect_rule_property():
    with expected_protocol(
        Keithley707B,
        CONNECT
        + [("print(channel.connectrule)", "2.00000e+00")]
        + [("channel.connectrule = channel.OFF", None)] + DONE,
    ) as m:
        assert m.connect_rule == "MAKE_BEFORE_BREAK"
        m.connect_rule = "OFF"
        with pytest.raises(ValueError):
            m.connect_rule = "SOMETIMES"


def test_opc_garbage_is_a_bad_reply():
    with expected_protocol(
        Keithley707B, CONNECT + [('channel.open("allslots")', None), ("*OPC?", "?!")]
    ) as m:
        with pytest.raises(BadReply, match=r"\*OPC\?"):
            m.open_all()


def test_708b_has_one_slot():
    with expected_protocol(
        Keithley708B, [("*IDN?", "Keithley Instruments Inc., Model 708B, 1, 1.0")] + CONNECT[1:]
    ) as m:
        assert m.cards == 1
        with pytest.raises(ChannelError, match="slot 2"):
            m.close(["2A01"])
    with pytest.raises(ValueError, match="1..1"):
        Keithley708B("TCPIP::127.0.0.1::1::SOCKET", cards=2)


def test_fills_the_switch_matrix_role():
    from lab.roles import SwitchMatrix

    with expected_protocol(Keithley707B, CONNECT) as m:
        assert isinstance(m, SwitchMatrix)
