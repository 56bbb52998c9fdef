"""Scan settings that keep a query's memory bounded, whatever the size of its input.

DuckDB reads a registered pyarrow dataset through ``type(dataset).scanner(dataset, columns=...,
filter=...)``, so Arrow's defaults apply: 16 batches and 4 files read ahead, Parquet reads
pre-buffered (every selected column chunk of a whole file fetched at once), and a threaded scan
whose output queue only pushes back at about a gigabyte, so a slow client lets the scan run far
ahead. On a 2 GiB input that held about 2 GiB in the server; with these settings the scan is
pulled by DuckDB batch by batch and holds a few row groups (and was faster on the same input).
Measured in tests/e2e/test_query_memory.py.
"""

from __future__ import annotations

from typing import Any

import pyarrow.dataset as ds

__all__ = ["bounded"]

_BATCH_READAHEAD = 4
_FRAGMENT_READAHEAD = 1

# Column chunks are fetched as DuckDB asks for them: one range read each, also on S3.
_PARQUET = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))


class _BoundedDataset(ds.FileSystemDataset):  # type: ignore[misc]  # pyarrow ships no stubs
    def scanner(self, *args: Any, **kwargs: Any) -> ds.Scanner:
        kwargs.setdefault("batch_readahead", _BATCH_READAHEAD)
        kwargs.setdefault("fragment_readahead", _FRAGMENT_READAHEAD)
        kwargs.setdefault("use_threads", False)  # pulled by the consumer: no unbounded run-ahead
        return super().scanner(*args, **kwargs)


def bounded(dataset: ds.Dataset) -> ds.Dataset:
    """``dataset`` scanned with little read-ahead (and Parquet without pre-buffering)."""
    if not isinstance(dataset, ds.FileSystemDataset):
        return dataset
    fmt = dataset.format
    fragments = list(dataset.get_fragments())
    if isinstance(fmt, ds.ParquetFileFormat):
        fmt = _PARQUET
        fragments = [
            _PARQUET.make_fragment(
                f.path, filesystem=dataset.filesystem, partition_expression=f.partition_expression
            )
            for f in fragments
        ]
    return _BoundedDataset(fragments, dataset.schema, fmt, dataset.filesystem)
