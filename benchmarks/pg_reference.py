"""The floor for `export.py --source postgres`: ADBC → pyarrow → Parquet on S3, nothing else.

python pg_reference.py URL TABLE s3://bucket/prefix ENDPOINT (credentials from AWS_* variables)
"""

import os
import sys
from urllib.parse import urlparse

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

url, table, dest, endpoint = sys.argv[1:5]
bucket_prefix = dest.removeprefix("s3://")
fs = pafs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                       region=os.environ.get("AWS_REGION", "us-east-1"), endpoint_override=urlparse(endpoint).netloc,
                       scheme=urlparse(endpoint).scheme)
with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cur:
    cur.execute(f"SELECT * FROM {table} ORDER BY id")
    reader = cur.fetch_record_batch()
    batch_rows, pending, n, part = 100_000, [], 0, 0
    for rb in reader:
        pending.append(rb)
        n += rb.num_rows
        if n >= batch_rows:
            pq.write_table(pa.Table.from_batches(pending), f"{bucket_prefix}/part-{part}.parquet", filesystem=fs,
                           compression="zstd")
            pending, n, part = [], 0, part + 1
    if pending:
        pq.write_table(pa.Table.from_batches(pending), f"{bucket_prefix}/part-{part}.parquet", filesystem=fs,
                       compression="zstd")
