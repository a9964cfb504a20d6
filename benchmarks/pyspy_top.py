"""Top entries of a py-spy profile recorded with ``--format raw`` (collapsed stacks), as text.

Record (a whole CLI run, every thread, native frames; samples of idle threads are left out by py-spy)::

    py-spy record --native -r 250 --format raw -o w1.raw -- python -m s3pump upload DIR s3://b/p/ --no-progress

then::

    python benchmarks/pyspy_top.py w1.raw            # top 25: native self, Python self, Python inclusive
    python benchmarks/pyspy_top.py w1.raw --under "SyncPlanner._list_remote"   # what one function spends on

"Python self" charges each sample to its innermost Python frame (so the C work a function calls,
an ``os.stat`` or a SQLite statement, counts for it); "inclusive" counts every function on the stack
once per sample. Shares are of all samples.
"""

from __future__ import annotations

import argparse
import collections
import re

_SITE = re.compile(r"\(/\S*?/(site-packages|src|lib/python3\.\d+)/")
_LINE = re.compile(r":\d+\)")


def _frames(stack: str) -> list[str]:
    return [_LINE.sub(")", _SITE.sub("(", f)) for f in stack.split(";")[1:]]


def _is_python(frame: str) -> bool:
    return ".py)" in frame or "<frozen" in frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw", help="py-spy --format raw output")
    ap.add_argument("-n", type=int, default=25, help="entries per list [25]")
    ap.add_argument("--under", help="only samples below this function (a prefix of its frame text), one level down")
    args = ap.parse_args()
    native: collections.Counter[str] = collections.Counter()
    python: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    below: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.raw) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = _frames(stack)
            if not frames:
                continue
            native[frames[-1]] += n
            py = [fr for fr in frames if _is_python(fr)]
            if py:
                python[py[-1]] += n
            for fr in set(frames):
                inclusive[fr] += n
            if args.under:
                at = [i for i, fr in enumerate(frames) if fr.startswith(args.under)]
                if at:
                    nxt = [fr for fr in frames[at[-1] + 1:] if _is_python(fr)][:1] or frames[at[-1] + 1:at[-1] + 2]
                    below[nxt[0] if nxt else "(itself)"] += n
    print(f"{total} samples")
    lists = [("native self", native), ("Python self", python), ("inclusive", inclusive)]
    if args.under:
        lists = [(f"below {args.under}", below)]
    for title, counter in lists:
        print(f"-- {title} --")
        for frame, n in counter.most_common(args.n):
            print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
