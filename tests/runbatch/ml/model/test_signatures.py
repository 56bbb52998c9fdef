"""Signatures: specs, inference from samples, validation of input data and params (snowflake.ml's rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runbatch.ml.model._signatures.validate import (
    rename_pandas_df,
    resolve_params,
    validate_pandas_df,
    validate_params,
)
from runbatch.ml.model.model_signature import (
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamGroupSpec,
    ParamSpec,
    infer_signature,
)


def test_feature_spec_dicts_and_equality() -> None:
    spec = FeatureSpec("x", DataType.STRING, shape=(2,))
    assert spec.to_dict() == {"type": "STRING", "name": "x", "nullable": True, "shape": (2,)}
    assert FeatureSpec.from_dict({"type": "INT64", "name": "a"}).nullable is False
    assert FeatureSpec("a", DataType.INT64, nullable=False) == FeatureSpec("a", DataType.INT64)
    assert repr(spec) == "FeatureSpec(dtype=DataType.STRING, name='x', shape=(2,), nullable=True)"
    with pytest.raises(TypeError, match=r"\(2114\) Shape should be a tuple if presented."):
        FeatureSpec("x", DataType.INT64, shape=[2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(2110\) No children feature specs."):
        FeatureGroupSpec("g", [])


def test_signature_round_trip_and_name_checks() -> None:
    sig = ModelSignature(
        inputs=[
            FeatureSpec("a", DataType.DOUBLE),
            FeatureGroupSpec("g", [FeatureSpec("t", DataType.STRING)], (-1,)),
        ],
        outputs=[FeatureSpec("o", DataType.INT64, nullable=False)],
        params=[
            ParamSpec("temperature", DataType.DOUBLE, 1.0),
            ParamGroupSpec("cfg", [ParamSpec("k", DataType.INT64, 5)]),
        ],
    )
    assert ModelSignature.from_dict(sig.to_dict()) == sig
    with pytest.raises(
        ValueError, match="Found duplicate parameter named resolved as T. Parameters must have distinct"
    ):
        ModelSignature([], [], [ParamSpec("t", DataType.INT64, 1), ParamSpec("T", DataType.INT64, 1)])
    with pytest.raises(ValueError, match="same name as input feature\\(s\\): A. Parameters and inputs must"):
        ModelSignature([FeatureSpec("a", DataType.INT64)], [], [ParamSpec("A", DataType.INT64, 1)])


def test_param_spec_defaults_are_checked() -> None:
    with pytest.raises(
        ValueError,
        match=r"Value 3.5 \(type: float\) is not compatible with dtype DataType.INT64. Expected int.",
    ):
        ParamSpec("n", DataType.INT64, 3.5)
    with pytest.raises(ValueError, match="Default value 300 .* Python integer 300 out of bounds for int8"):
        ParamSpec("n", DataType.INT8, 300)
    with pytest.raises(ValueError, match=r"Expected 1-dimensional value, got 0-dimensional"):
        ParamSpec("s", DataType.STRING, "x", shape=(-1,))
    assert ParamGroupSpec("g", [ParamSpec("w", DataType.INT64, 1)], shape=(2,)).default_value == [
        {"w": 1},
        {"w": 1},
    ]


def test_infer_from_pandas_numpy_and_lists() -> None:
    frame = pd.DataFrame(
        {"a": [1, 2], "b": [0.5, 1.5], "s": ["x", "y"], "l": [[1, 2], [3, 4]], "f": [True, False]}
    )
    sig = infer_signature(frame, np.array([0, 1]))
    assert sig.to_dict()["inputs"] == [
        {"type": "INT64", "name": "a", "nullable": True},
        {"type": "DOUBLE", "name": "b", "nullable": True},
        {"type": "STRING", "name": "s", "nullable": True},
        {"type": "INT64", "name": "l", "nullable": True, "shape": (2,)},
        {"type": "BOOL", "name": "f", "nullable": True},
    ]
    assert sig.to_dict()["outputs"] == [{"type": "INT64", "name": "output_feature_0", "nullable": False}]
    arr = infer_signature(np.zeros((3, 2), dtype=np.float32), [[1, 2], [3, 4]])
    assert [(f.name, f.dtype) for f in arr.inputs] == [
        ("input_feature_0", DataType.FLOAT),
        ("input_feature_1", DataType.FLOAT),
    ]  # type: ignore[attr-defined]
    assert [f.name for f in arr.outputs] == ["output_feature_0", "output_feature_1"]
    with pytest.warns(UserWarning, match="The sample input has 150 rows. Using the first 100 rows"):
        infer_signature(pd.DataFrame({"a": range(150)}), pd.DataFrame({"b": range(150)}))
    with pytest.raises(
        NotImplementedError, match="Un-supported type provided <class 'str'> for data truncate."
    ):
        infer_signature("text", [1])
    with pytest.raises(ValueError, match="3 feature names are provided, while there are 1 features."):
        infer_signature([1, 2], [1, 2], input_feature_names=["a", "b", "c"])
    nulls = pd.DataFrame({"x": [1.0, None]})
    with pytest.warns(UserWarning) as warned:
        assert infer_signature(nulls, nulls).inputs[0].dtype is DataType.DOUBLE  # type: ignore[attr-defined]
    assert all("Null value detected in column x" in str(w.message) for w in warned)


def test_validation_of_inference_input() -> None:
    features = [FeatureSpec("a", DataType.INT64), FeatureSpec("v", DataType.DOUBLE, shape=(2,))]
    validate_pandas_df(pd.DataFrame({"a": [1], "v": [[0.5, 1.5]], "extra": ["ok"]}), features)
    with pytest.raises(
        ValueError, match=r"\(2112\) Data Validation Error: feature a does not exist in data."
    ):
        validate_pandas_df(pd.DataFrame({"A": [1], "v": [[1.0, 2.0]]}), features)
    with pytest.raises(ValueError, match="Feature type DataType.INT64 is not met by all elements"):
        validate_pandas_df(pd.DataFrame({"a": [1.5], "v": [[1.0, 2.0]]}), features)
    with pytest.raises(ValueError, match=r"Feature shape \(2,\) is not met by all elements"):
        validate_pandas_df(pd.DataFrame({"a": [1], "v": [[1.0, 2.0, 3.0]]}), features)
    with pytest.raises(ValueError, match="Feature is a array type feature while scalar data is provided."):
        validate_pandas_df(pd.DataFrame({"a": [1], "v": [1.0]}), features)
    renamed = rename_pandas_df(pd.DataFrame(np.ones((1, 2))), features)
    assert list(renamed.columns) == ["a", "v"]
    with pytest.raises(ValueError, match="Signature requires 2 features, but have 3 in input data."):
        rename_pandas_df(pd.DataFrame(np.ones((1, 3))), features)


def test_params_validation_and_resolution() -> None:
    specs = [
        ParamSpec("temperature", DataType.DOUBLE, 1),
        ParamSpec("max_tokens", DataType.INT64, None),
        ParamSpec("stop", DataType.STRING, None, shape=(-1,)),
        ParamGroupSpec(
            "cfg", [ParamSpec("top_k", DataType.INT64, 5), ParamSpec("Alpha", DataType.FLOAT, 0.5)]
        ),
    ]
    assert resolve_params(None, specs) == {
        "temperature": 1.0,
        "max_tokens": None,
        "stop": None,
        "cfg": {"top_k": 5, "Alpha": 0.5},
    }
    given = {"TEMPERATURE": 2, "cfg": {"TOP_K": 7}}
    validate_params(given, specs)
    assert resolve_params(given, specs) == {
        "temperature": 2.0,
        "max_tokens": None,
        "stop": None,
        "cfg": {"top_k": 7, "Alpha": 0.5},
    }
    with pytest.raises(
        ValueError,
        match=r"Unknown parameter\(s\): \['bar', 'foo'\]. Valid parameters are: "
        r"\['cfg', 'max_tokens', 'stop', 'temperature'\]",
    ):
        validate_params({"foo": 1, "bar": 2}, specs)
    with pytest.raises(
        ValueError,
        match=r"Duplicate parameter\(s\) provided with different cases: "
        r"\[\['temperature', 'TEMPERATURE'\]\]. Parameter names are case-insensitive.",
    ):
        validate_params({"temperature": 1, "TEMPERATURE": 2}, specs)
    with pytest.raises(ValueError, match="Parameter 'max_tokens': value \\[3\\] .* expected scalar value"):
        validate_params({"max_tokens": [3]}, specs)
    with pytest.raises(ValueError, match="Unknown key\\(s\\) 'z' in parameter 'cfg'."):
        validate_params({"cfg": {"z": 1}}, specs)
    with pytest.raises(ValueError, match="does not accept any parameters"):
        validate_params({"x": 1}, [])


def test_signature_repr_matches_snowflakes_layout() -> None:
    sig = ModelSignature(
        inputs=[
            FeatureSpec("a", DataType.INT64),
            FeatureGroupSpec("g", [FeatureSpec("x", DataType.STRING, (2,))], (-1,)),
        ],
        outputs=[FeatureSpec("o", DataType.DOUBLE, nullable=False)],
        params=[ParamSpec("t", DataType.DOUBLE, 1.0)],
    )
    assert repr(sig) == (
        "ModelSignature(\n"
        "    inputs=[\n"
        "        FeatureSpec(dtype=DataType.INT64, name='a', nullable=True),\n"
        "        FeatureGroupSpec(\n"
        "            name='g',\n"
        "            specs=[\n"
        "                FeatureSpec(dtype=DataType.STRING, name='x', shape=(2,), nullable=True)\n"
        "            ], shape=(-1,)\n"
        "        )\n"
        "    ],\n"
        "    outputs=[\n"
        "        FeatureSpec(dtype=DataType.DOUBLE, name='o', nullable=False)\n"
        "    ],\n"
        "    params=[\n"
        "        ParamSpec(name='t', dtype=DataType.DOUBLE, default_value=1.0)\n"
        "    ]\n"
        ")"
    )
    assert (
        repr(ModelSignature([], [])) == "ModelSignature(\n    inputs=[],\n    outputs=[],\n    params=[]\n)"
    )
