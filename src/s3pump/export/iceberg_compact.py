"""Compaction of an Iceberg export's small files (``export --table-format iceberg``: ``--follow``, and the
end of a one-shot run whose commits left a partition more than one file off the target size).

Following a table commits small groups (``--max-file-age``): each partition gathers small data files.
After each commit, the live data files below 3/4 of the target size are grouped by partition; a
partition with ``min_files`` or more of them is rewritten: its small files are read (with the table's
current schema), written again as files of the target size, and replaced in **one overwrite commit**
(the old files deleted from the table, the new ones added, in the same snapshot). The commit carries
no cursor (``s3pump.compaction``), so the cursor is still read from the newest append. A kill leaves
the commit or nothing: the new files of a compaction that never committed are orphans the next run
deletes; the replaced files stay in storage for the older snapshots (expire snapshots to drop them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPACTION", "compact_small_files"]

COMPACTION = "s3pump.compaction"


def compact_small_files(table: Any, target_bytes: int, arrow_target_bytes: Any, *, min_files: int = 4,
                        small_fraction: float = 0.75, run: Any = None) -> int:
    """Rewrite the partitions of ``table`` holding ``min_files`` or more small live data files (below
    ``small_fraction`` of ``target_bytes``); returns how many files were replaced (0: no commit).
    ``arrow_target_bytes(table)``: the Arrow bytes that make a file of ``target_bytes`` of Parquet
    (``export/iceberg_sizer.py``'s ``FileSizer``); ``run``: the run whose engine uploads the new files
    (``iceberg_write.data_files``)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    from .iceberg_write import data_files

    small = int(target_bytes * small_fraction)
    groups: dict[tuple[int, str], list[Any]] = {}
    for task in table.scan().plan_files():
        f = task.file
        if f.file_size_in_bytes < small and not task.delete_files:
            groups.setdefault((f.spec_id, str(f.partition)), []).append(task)
    picked = [tasks for tasks in groups.values() if len(tasks) >= min_files]
    if not picked:
        return 0
    meta = table.metadata
    with table.transaction() as tx, tx.update_snapshot(snapshot_properties={COMPACTION: "1"}).overwrite() as rewrite:
        for tasks in picked:
            rows = ArrowScan(meta, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
            target = arrow_target_bytes(rows) if rows.nbytes > arrow_target_bytes(rows) else rows.nbytes + 1
            for data_file in data_files(table, rows, target, rewrite.commit_uuid, run=run):
                rewrite.append_data_file(data_file)
            for task in tasks:
                rewrite.delete_data_file(task.file)
    return sum(len(tasks) for tasks in picked)
