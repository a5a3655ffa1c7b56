"""TCP framing (RFC 6587): octet counting and newlines, however the bytes are chunked."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutt.sources.framing import Frame, TcpFramer, datagram_frame

FUZZ = settings(
    max_examples=int(os.environ.get("MUTT_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def frames(framer: TcpFramer, *chunks: bytes) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.close()


def test_octet_counted_and_newline_frames_mix_on_one_connection() -> None:
    stream = (
        b"39 <187>Nov 23 06:29:23 vm root: hello tcp" + b"<13>two\n" + b"5 <13>3\n\n" + b"<13>x"
    )
    got = frames(TcpFramer(1024), stream)
    assert [f.data for f in got] == [
        b"<187>Nov 23 06:29:23 vm root: hello tcp",
        b"<13>two",
        b"<13>3",
        b"<13>x",  # the last line without its newline still counts at EOF
    ]
    assert not any(f.truncated for f in got)


def test_crlf_and_nul_trailers_are_not_part_of_the_message() -> None:
    got = frames(TcpFramer(64), b"<13>a\r\n<13>b\x00\n")
    assert [f.data for f in got] == [b"<13>a", b"<13>b"]


def test_a_digit_run_without_a_space_is_a_plain_line() -> None:
    assert [f.data for f in frames(TcpFramer(64), b"12345abc\n<13>x\n")] == [b"12345abc", b"<13>x"]
    long_number = b"1" * 12 + b" rest\n"
    assert [f.data for f in frames(TcpFramer(64), long_number)] == [long_number.strip()]


def test_over_long_frames_are_cut_and_the_rest_skipped() -> None:
    framer = TcpFramer(10)
    got = frames(framer, b"20 " + b"a" * 20 + b"<13>next\n" + b"b" * 25 + b"\n<13>last\n")
    assert [(f.data, f.truncated) for f in got] == [
        (b"a" * 10, True),
        (b"<13>next", False),
        (b"b" * 10, True),
        (b"<13>last", False),
    ]


def test_incomplete_octet_frames_wait_for_their_bytes() -> None:
    framer = TcpFramer(100)
    assert framer.feed(b"1") == []
    assert framer.feed(b"1 <13>1") == []
    assert [f.data for f in framer.feed(b"234567")] == [b"<13>1234567"]
    assert framer.feed(b"5 <13>") == []
    assert framer.close() == [Frame(b"<13>", truncated=True)]  # what came of a cut-off frame


def test_datagrams_are_one_message_each() -> None:
    assert datagram_frame(b"<13>x\n\x00", 100) == Frame(b"<13>x")
    assert datagram_frame(b" \n", 100) is None
    assert datagram_frame(b"<13>" + b"x" * 10, 8) == Frame(b"<13>xxxx", truncated=True)


message = st.binary(min_size=1, max_size=80).map(
    lambda b: b"<13>" + b.replace(b"\n", b" ").replace(b"\r", b" ").replace(b"\x00", b" ")
)


@FUZZ
@given(
    messages=st.lists(st.tuples(message, st.booleans()), max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=10),
)
def test_any_chunking_yields_the_same_frames(
    messages: list[tuple[bytes, bool]], cuts: list[int]
) -> None:
    stream = b"".join((b"%d %s" % (len(m), m)) if counted else m + b"\n" for m, counted in messages)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    got = frames(TcpFramer(1024), *chunks)
    assert [f.data for f in got] == [m for m, _ in messages]


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(1, 64))
def test_random_bytes_never_crash_and_frames_stay_bounded(chunks: list[bytes], limit: int) -> None:
    framer = TcpFramer(limit)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert 0 < len(frame.data) <= limit
        assert len(framer._buffer) <= limit + 12  # never more than a frame and its header
    for frame in framer.close():
        assert 0 < len(frame.data) <= limit
