"""How many bytes of Arrow make an Iceberg data file of the target size in bytes of Parquet."""

from __future__ import annotations

import pyarrow as pa

from .iceberg_write import parquet_writer

__all__ = ["SAMPLE_ROWS", "FileSizer"]

#: rows of the first batches written as a sample to measure the Arrow-to-Parquet ratio
SAMPLE_ROWS = 20_000


class FileSizer:
    """How many bytes of Arrow make a data file of ``target_bytes`` of Parquet.

    Files are cut by their Arrow (in-memory) size. The ratio of Arrow bytes to Parquet bytes is measured:
    first by writing a sample with the data files' Parquet writer (``iceberg_write.parquet_writer``) and
    taking the bytes it wrote, then from the sizes of the files committed so far (their
    ``added-files-size``, the bytes the writer wrote), over the Arrow bytes they held.

    The sample is the first :data:`SAMPLE_ROWS` rows, gathered over the first batches: a Parquet file's
    fixed cost (footer, page headers, dictionaries) weighs on a small sample, so a ratio taken from one
    small batch (1,000 rows) undercounts the Arrow bytes of a file and cut the first commit's file at a
    fraction of the target. Until the sample is whole it is measured again each time it has doubled.
    """

    def __init__(self, target_bytes: int) -> None:
        self.target_bytes = target_bytes
        self.arrow_bytes = self.parquet_bytes = 0
        self.ratio: float | None = None
        self._sample: list[pa.Table] = []
        self._sample_rows = self._measured_rows = 0

    def arrow_target_bytes(self, batch: pa.Table) -> int:
        """The Arrow bytes of a file of the target size; ``batch``: the rows just read (a sample while the
        sample is not whole and no commit was measured)."""
        if self.parquet_bytes == 0 and self._sample_rows < SAMPLE_ROWS and batch.num_rows:
            part = batch.slice(0, SAMPLE_ROWS - self._sample_rows)
            self._sample.append(part)
            self._sample_rows += part.num_rows
            if self.ratio is None or self._sample_rows >= min(2 * self._measured_rows, SAMPLE_ROWS):
                self._measure()
        return max(1, int(self.target_bytes * (self.ratio or 1.0)))

    def _measure(self) -> None:
        sample = pa.concat_tables(self._sample) if len(self._sample) > 1 else self._sample[0]
        self._sample = [sample]
        sink = pa.BufferOutputStream()
        parquet_writer().write_to(sample, sink, store_decimal_as_integer=True)
        self.ratio = max(sample.nbytes, 1) / max(sink.tell(), 1)
        self._measured_rows = sample.num_rows
        if self._measured_rows >= SAMPLE_ROWS:
            self._sample = []

    def measured(self, arrow_bytes: int, parquet_bytes: int) -> None:
        """A commit of ``arrow_bytes`` of Arrow was written as ``parquet_bytes`` of data files."""
        if parquet_bytes <= 0:
            return
        self._sample = []
        self.arrow_bytes += arrow_bytes
        self.parquet_bytes += parquet_bytes
        self.ratio = self.arrow_bytes / self.parquet_bytes
