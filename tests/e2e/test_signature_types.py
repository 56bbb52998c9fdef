"""Every DataType, shaped features and grouped outputs, through a batch job and a local run."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pyarrow as pa

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.model.model_signature import DataType, FeatureGroupSpec, FeatureSpec, ModelSignature
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Echo

SCALARS = {
    "I8": (DataType.INT8, pa.int8(), [-128, 0, 127]),
    "I16": (DataType.INT16, pa.int16(), [-32768, 1, 32767]),
    "I32": (DataType.INT32, pa.int32(), [-(2**31), 2, 2**31 - 1]),
    "I64": (DataType.INT64, pa.int64(), [-(2**63), 3, 2**63 - 1]),
    "U8": (DataType.UINT8, pa.uint8(), [0, 1, 255]),
    "U16": (DataType.UINT16, pa.uint16(), [0, 2, 65535]),
    "U32": (DataType.UINT32, pa.uint32(), [0, 3, 2**32 - 1]),
    "U64": (DataType.UINT64, pa.uint64(), [0, 4, 2**64 - 1]),
    "F32": (DataType.FLOAT, pa.float32(), [1.5, -0.25, 2.0**100]),
    "F64": (DataType.DOUBLE, pa.float64(), [1e-300, -2.5, 1.7e308]),
    "B": (DataType.BOOL, pa.bool_(), [True, False, True]),
    "S": (DataType.STRING, pa.string(), ["a", "", "ünï"]),
    "BY": (DataType.BYTES, pa.binary(), [b"\x00\x01", b"", b"\xff"]),
    "TS": (
        DataType.TIMESTAMP_NTZ,
        pa.timestamp("ns"),
        [
            datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
            datetime.datetime(1970, 1, 1),
            datetime.datetime(2262, 1, 1),
        ],
    ),
}
VECTORS = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def _signature() -> ModelSignature:
    inputs = [FeatureSpec(name, dtype) for name, (dtype, _, _) in SCALARS.items()]
    inputs.append(FeatureSpec("VEC", DataType.DOUBLE, shape=(2,)))
    outputs = [FeatureSpec(f"OUT_{f.name}", f.dtype, shape=f.shape) for f in inputs]
    outputs.append(
        FeatureGroupSpec(
            "SUMMARY", [FeatureSpec("n", DataType.INT64), FeatureSpec("tags", DataType.STRING, shape=(-1,))]
        )
    )
    return ModelSignature(inputs, outputs)


def _table() -> pa.Table:
    columns = {name: pa.array(values, type=arrow) for name, (_, arrow, values) in SCALARS.items()}
    columns["VEC"] = pa.array(VECTORS, type=pa.list_(pa.float64()))
    return pa.table(columns)


def test_every_data_type_round_trips_through_a_job(embedded_session: Session, embedded_db: str) -> None:
    session = embedded_session
    mv = Registry(session).log_model(Echo(), model_name="ECHO", signatures={"predict": _signature()})
    table = _table()
    frame = session.create_dataframe(table.to_pandas())
    job = mv.run_batch(
        frame,
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location="@DATA/types/"),
        job_spec=JobSpec(max_batch_rows=2),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    out = session.read.option("pattern", ".*\\.parquet").parquet("@DATA/types/")._arrow()
    for name, (_, arrow, values) in SCALARS.items():
        assert out.schema.field(f"OUT_{name}").type == arrow, name
        assert out.column(f"OUT_{name}").to_pylist() == values, name
    assert out.column("OUT_VEC").to_pylist() == VECTORS
    assert [json.loads(v) for v in out.column("SUMMARY").to_pylist()] == [
        {"n": v, "tags": ["a", "b"]} for v in SCALARS["I64"][2]
    ]
    local = mv.run(table.to_pandas(), function_name="predict")
    assert local["OUT_U64"].tolist() == SCALARS["U64"][2]
    assert local["OUT_TS"].tolist() == [pd.Timestamp(v) for v in SCALARS["TS"][2]]
    np.testing.assert_array_equal(np.stack(local["OUT_VEC"].to_numpy()), np.array(VECTORS))
