"""Small custom models the end-to-end tests log. Pickled by value, so runtimes need not import this."""

from __future__ import annotations

import os
import time

import pandas as pd

from runbatch.ml.model import custom_model


class Doubler(custom_model.CustomModel):
    """x -> 2x, plus a scale parameter: y = x * 2 * scale."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame, *, scale: float = 1.0) -> pd.DataFrame:
        return pd.DataFrame({"Y": X["X"] * 2.0 * scale})


class Tripler(custom_model.CustomModel):
    """x -> 3x: another model with Doubler's signature."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"Y": X["X"] * 3.0})


class SlowDoubler(custom_model.CustomModel):
    """Y = 2X, a third of a second per batch: slow enough to break things while it runs."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.3)
        return pd.DataFrame({"Y": X["X"] * 2.0})


class Sleeper(custom_model.CustomModel):
    """Slow on purpose, so a job can be cancelled while it runs."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.3)
        return pd.DataFrame({"Y": X["X"]})


class Crasher(custom_model.CustomModel):
    """Kills its process half way through the shard: a runtime crash, not a model error."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        if int(X["X"].iloc[0]) >= 50:
            print("about to crash", flush=True)
            os._exit(17)
        return pd.DataFrame({"Y": X["X"]})


class Raiser(custom_model.CustomModel):
    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("the model refuses this input")


class RowwiseTable(custom_model.CustomModel):
    """A row-wise TABLE_FUNCTION that reports how many partitions each call saw."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"Y": X["X"] * 2.0, "PARTS_IN_CALL": X["P"].nunique()}, index=X.index)


class PartitionStats(custom_model.CustomModel):
    """Two rows per partition, whatever its size: M rows in, N out."""

    @custom_model.partitioned_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"STAT": ["count", "sum"], "VALUE": [float(len(X)), float(X["X"].sum())]})


class EchoPartition(custom_model.CustomModel):
    """A partitioned function whose output names the partition column: refused at run_batch."""

    @custom_model.partitioned_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"P": X["P"].iloc[:1], "N": [len(X)]})


class Echo(custom_model.CustomModel):
    """Every input column back as OUT_<name>, plus a grouped summary: for type round trips."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({f"OUT_{c}": X[c] for c in X.columns}, index=X.index)
        out["SUMMARY"] = [{"n": int(i), "tags": ["a", "b"]} for i in X["I64"]]
        return out


class PositiveOnly(custom_model.CustomModel):
    """Y = 2X, and refuses any batch holding a negative X: those rows become error rows."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        if (X["X"] < 0).any():
            raise ValueError("negative input")
        return pd.DataFrame({"Y": X["X"] * 2.0})
