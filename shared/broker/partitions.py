"""Stream partitions: which hash tag each partition's keys carry, and where an event goes.

A Redis Cluster puts a key in the slot of its hash tag (CRC16 of the part in
braces, mod 16384), and a slot lives on one primary. With one tag for the
whole pipeline (``{p}``) everything lands on one primary, so the pipeline
cannot outgrow one Redis. ``MUTT_PARTITIONS=N`` gives the streams and their
side keys N tags, the first N of ``TAGS``; a hand-off stays in its
partition, so each ``MULTI`` and each script still touches one slot.

The tags are fixed, so the keys of partition k never change with N (and
partition 0 is today's ``{p}``: N=1 is the layout every installation had).
Growing N only adds partitions; shrinking leaves the last ones to drain
(docs/operations.md, "Stream partitions").

Their slots are spread on purpose. Offsets from ``{p}``'s slot, in units of
the 16384 slots, are 0, 1/3, 2/3, then each gap halved in the order the
points came (1/6, 1/2, 5/6, then 1/12, ...). So every N of the form 3·2^k
(3, 6, 12, 24, 48, 96) is exactly evenly spaced, which puts N/M partitions
on each of M primaries holding equal slot ranges, whatever those ranges are;
other N are within a factor of two of even. Each tag is ``p<k>.<suffix>``
with the shortest base-36 suffix that lands on its target slot
(``tests/shared/test_partitions.py`` searches again and checks the spread).
"""

from __future__ import annotations

import zlib

SLOTS = 16384
TAGS: tuple[str, ...] = (
    "p", "p1.5df", "p2.7mb", "p3.6hw", "p4.h93", "p5.3rt", "p6.91x", "p7.ggq",
    "p8.afm", "p9.qah", "p10.1ar", "p11.243", "p12.axz", "p13.0jq", "p14.9p3", "p15.086",
    "p16.5q", "p17.68k", "p18.7su", "p19.3l6", "p20.dfu", "p21.0i0", "p22.hjn", "p23.12m",
    "p24.hxa", "p25.ast", "p26.517", "p27.azz", "p28.4xe", "p29.5zh", "p30.49z", "p31.act",
    "p32.hao", "p33.4g2", "p34.93", "p35.ml", "p36.aww", "p37.4ni", "p38.5fg", "p39.4cr",
    "p40.002", "p41.0gt", "p42.2ih", "p43.951", "p44.45d", "p45.50q", "p46.p32", "p47.xc",
    "p48.ya8", "p49.7c2", "p50.dgj", "p51.8a7", "p52.aap", "p53.6hr", "p54.062", "p55.4my",
    "p56.2l0", "p57.fcu", "p58.zk", "p59.5n5", "p60.309", "p61.4m5", "p62.5en", "p63.ic3",
    "p64.hak", "p65.gqw", "p66.013", "p67.8l5", "p68.k5k", "p69.736", "p70.o81", "p71.2og",
    "p72.4i6", "p73.4zx", "p74.2ch", "p75.r7", "p76.gut", "p77.2lj", "p78.00en", "p79.0vu",
    "p80.efr", "p81.1i7", "p82.0b4", "p83.335", "p84.1ax", "p85.15f", "p86.0zm", "p87.92h",
    "p88.0b4", "p89.exr", "p90.110", "p91.79", "p92.3z0", "p93.guu", "p94.biz", "p95.74l",
)  # fmt: skip
MAX_PARTITIONS = len(TAGS)


def partition_of(source: str, hostname: str, partitions: int) -> int:
    """The partition of an event from ``hostname`` sent by ``source``, out of ``partitions``.

    CRC-32 of both (not Python's ``hash``, which changes per process): every
    ingest instance, every version and every machine places one device's
    events in the same partition, so they stay in order there.
    """
    if partitions <= 1:
        return 0
    return zlib.crc32(f"{source}\0{hostname}".encode()) % partitions


def check_count(partitions: int) -> int:
    """``partitions`` when it is a usable count, else a ``ValueError`` saying the range."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}, not {partitions}")
    return partitions
