"""Key clashes: two source files of one run that would be written to the same key.

``upload d1 d2 s3://b/p/`` where both directories hold ``x.txt`` maps two files to ``p/x.txt``;
uploading both would report both done while the object holds whichever finished last. A run
with such a clash is refused before anything is sent (a usage error, exit 2, one line per clash).

Only runs with more than one root can clash: within one root, distinct relative paths give
distinct keys (the prefix is prepended to each). Finding clashes among millions of files in
bounded memory: a pre-pass walks the roots (the same walk, filters and symlink rule as the
upload), feeds ``(key, source)`` records to an :class:`~s3pump.plan.extsort.ExternalSorter`
(``max_in_memory`` records in RAM, sorted runs spilled to temporary files beyond that) and
reads the merged order once: a clash is a run of equal keys. A ``--from-list`` file is checked the
same way (its lines may name one key twice), by reading it once before the upload. The pre-pass costs one extra walk
of the tree (names and ``stat``, no file content), and memory independent of the file count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..errors import KeyClashError
from ..items import UploadItem
from ..plan.extsort import ExternalSorter
from ..urls import S3Url
from .keynames import KeyNames
from .pathfilter import PathFilter
from .walk import walk_items

__all__ = ["KeyClash", "check_no_key_clashes", "find_clashes_in", "find_key_clashes", "root_order"]

#: Clashes named one by one in the error; beyond this the message gives the count of the rest.
MAX_CLASHES_SHOWN = 100


@dataclass(frozen=True, slots=True)
class KeyClash:
    """Two or more ``sources`` (paths, in walk order of their roots) that map to one ``key``."""

    key: str
    sources: tuple[str, ...]


def find_key_clashes(
    roots: Sequence[str], dest: S3Url, *, follow_symlinks: bool = False, path_filter: PathFilter | None = None,
    max_in_memory: int = 100_000, tmp_dir: str | None = None, names: KeyNames | None = None,
) -> Iterator[KeyClash]:
    """Every key that more than one file under ``roots`` maps to, in key order.

    Paths that cannot be planned (missing, unreadable, invalid key) are not keys and never clash;
    the upload reports them itself. A single root cannot clash and is not walked.

    Raises:
        OSError: the temporary directory for the sorted runs is full or not writable.
    """
    if len(roots) < 2:
        return
    walk = walk_items(list(roots), dest, follow_symlinks=follow_symlinks, path_filter=path_filter,
                      threaded=False, names=names)
    yield from find_clashes_in(walk, max_in_memory=max_in_memory, tmp_dir=tmp_dir)


def find_clashes_in(items: Iterable[object], *, max_in_memory: int = 100_000,
                    tmp_dir: str | None = None, order: Callable[[UploadItem], int] | None = None) -> Iterator[KeyClash]:
    """Every key that more than one of ``items`` (upload items without an error; other objects, such as
    the ``Discovered`` events a source interleaves, are passed over) maps to, in key order, in bounded
    memory (see the module docstring). Used for a ``--from-list`` file, whose lines may repeat a key,
    and for ``--cluster``'s walk. A clash names its sources in the order of ``items``, or of
    ``order(item)`` (e.g. :func:`root_order`: a walk whose parts arrive in any order)."""
    sorter = ExternalSorter(max_in_memory, tmp_dir)
    try:
        for seq, item in enumerate(items):  # seq keeps each key's sources in walk order
            if isinstance(item, UploadItem) and item.error is None:  # not the events a source interleaves
                sorter.add((item.key, seq if order is None else order(item), item.source))
        key: str | None = None
        sources: list[str] = []
        for k, _, source in sorter.sorted():
            if k != key:
                if len(sources) > 1:
                    yield KeyClash(key, tuple(sources))  # type: ignore[arg-type]
                key, sources = k, []
            sources.append(source)
        if len(sources) > 1:
            yield KeyClash(key, tuple(sources))  # type: ignore[arg-type]
    finally:
        sorter.close()


def root_order(roots: Sequence[str]) -> Callable[[UploadItem], int]:
    """``order(item)``: the index of the first of ``roots`` the item's source is (or is under), so that
    a clash names its sources in the order of their roots, as the single walk does."""
    prefixes = [(r, r if r.endswith("/") else r + "/") for r in roots]

    def order(item: UploadItem) -> int:
        for i, (root, under) in enumerate(prefixes):
            if item.source == root or item.source.startswith(under):
                return i
        return len(prefixes)

    return order


def check_no_key_clashes(clashes: Iterable[KeyClash], dest: S3Url) -> None:
    """Raise if ``clashes`` (from :func:`find_key_clashes` or :func:`find_clashes_in`) holds any.

    Raises:
        KeyClashError: one line per clash (``s3://bucket/key: a and b map to this key; ...``), at most
            :data:`MAX_CLASHES_SHOWN` lines and then the count of the others; exit 2.
    """
    lines: list[str] = []
    more = 0
    for clash in clashes:
        if len(lines) < MAX_CLASHES_SHOWN:
            lines.append(f"s3://{dest.bucket}/{clash.key}: {' and '.join(clash.sources)} map to this key; "
                         "upload them to different prefixes, or --exclude one; nothing was uploaded")
        else:
            more += 1
    if more:
        lines.append(f"... and {more} more keys that more than one source maps to")
    if lines:
        raise KeyClashError("\n".join(lines))
