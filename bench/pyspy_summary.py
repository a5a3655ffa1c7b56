"""Inclusive and self shares per function from a py-spy ``--format raw`` profile.

Run: ``python -m bench.pyspy_summary PROFILE.raw [--top 40] [--under FUNCTION]``.
``--under`` keeps only the samples whose stack passes through a frame
containing that text (for example ``Admitter.admit``). Line numbers are
dropped, so a function is one row however many lines were sampled.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarize(path: Path, under: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, inclusive counts, self counts) of the profile."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if under and not any(under in f for f in frames):
            continue
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    return total, inclusive, own


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--under", help="only stacks through a frame containing this text")
    args = parser.parse_args(argv)
    total, inclusive, own = summarize(args.profile, args.under)
    print(f"{total:,} samples" + (f" under {args.under}" if args.under else ""))
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for frame, n in counts.most_common(args.top):
            print(f"{100 * n / max(1, total):6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
