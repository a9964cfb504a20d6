"""The floor for `export.py --source postgres`: ADBC → pyarrow → S3, nothing else (no checks, no state).

python pg_reference.py URL TABLE s3://bucket/prefix ENDPOINT [parquet|jsonl]   (credentials from AWS_* variables)

parquet (the default): ``SELECT * … ORDER BY id`` read by ADBC (binary COPY) as record batches,
100,000-row zstd Parquet files written by pyarrow straight to S3 (its own S3 client).
jsonl: the server builds each line (``row_to_json(t)::text || E'\\n'``, the JSON PostgreSQL
itself prints), ADBC reads the text column, and each 100,000 lines are one gzip member
(ISA-L level 2, as s3pump's ``--compression gzip``; zlib level 6 without ``isal``).
"""

import os
import sys
import zlib
from urllib.parse import urlparse

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

url, table, dest, endpoint = sys.argv[1:5]
fmt = sys.argv[5] if len(sys.argv) > 5 else "parquet"
bucket_prefix = dest.removeprefix("s3://")
fs = pafs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                       region=os.environ.get("AWS_REGION", "us-east-1"), endpoint_override=urlparse(endpoint).netloc,
                       scheme=urlparse(endpoint).scheme)


def gzip_compress(data: pa.Buffer) -> bytes:
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.compress(data, 6, wbits=31)
    return bytes(isal_zlib.compress(data, 2, wbits=31))


def write(batches: list[pa.RecordBatch], part: int) -> None:
    if fmt == "parquet":
        pq.write_table(pa.Table.from_batches(batches), f"{bucket_prefix}/part-{part}.parquet", filesystem=fs,
                       compression="zstd")
        return
    lines = pa.concat_arrays([b.column(0) for b in batches])  # each value ends in "\n"
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, lines.buffers()[1]], offset=lines.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    body = gzip_compress(lines.buffers()[2][start:end])
    with fs.open_output_stream(f"{bucket_prefix}/part-{part}.jsonl.gz", compression=None) as out:
        out.write(body)


query = (f"SELECT * FROM {table} ORDER BY id" if fmt == "parquet" else
         f"SELECT row_to_json(t)::text || E'\\n' AS line FROM {table} AS t ORDER BY id")
with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
    cur.execute(query)
    reader = cur.fetch_record_batch()
    batch_rows, pending, n, part = 100_000, [], 0, 0
    for rb in reader:
        pending.append(rb)
        n += rb.num_rows
        if n >= batch_rows:
            write(pending, part)
            pending, n, part = [], 0, part + 1
    if pending:
        write(pending, part)
