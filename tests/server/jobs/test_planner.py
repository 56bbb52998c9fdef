from __future__ import annotations

import pyarrow as pa
import pytest

from server.jobs.planner import InputFile, plan_slices

SCHEMA = pa.schema([("x", pa.int64())])


def _files(*rows: int) -> list[InputFile]:
    return [InputFile(f"f{i}", n, SCHEMA) for i, n in enumerate(rows)]


def test_rows_split_evenly_across_replicas() -> None:
    plan = plan_slices(_files(10, 3, 7), 3)
    assert [[(s.key, s.offset, s.rows) for s in shard] for shard in plan] == [
        [("f0", 0, 7)],
        [("f0", 7, 3), ("f1", 0, 3), ("f2", 0, 1)],
        [("f2", 1, 6)],
    ]


@pytest.mark.parametrize(("rows", "replicas", "shards"), [((0,), 4, 1), ((2,), 5, 2), ((1_000_003,), 2, 2)])
def test_never_more_shards_than_rows(rows: tuple[int, ...], replicas: int, shards: int) -> None:
    plan = plan_slices(_files(*rows), replicas)
    assert len(plan) == shards
    assert sum(s.rows for shard in plan for s in shard) == sum(rows)
    sizes = [sum(s.rows for s in shard) for shard in plan]
    assert max(sizes) - min(sizes) <= 1
