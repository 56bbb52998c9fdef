"""Run by the MAIN environment's Python (it has the server's SDK extras and scikit-learn): logs the
models the Airflow tests score with and makes their database, stage and input table.

    python tests/airflow/seed.py URL TOKEN DATABASE
"""

from __future__ import annotations

import sys
import time

import pandas as pd
from sklearn.linear_model import LinearRegression

from runbatch.ml.model import custom_model
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session


class Refuser(custom_model.CustomModel):
    """Fails every batch, so the job fails with the model's own message."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("the model refuses this input")


class Sleeper(custom_model.CustomModel):
    """Slow on purpose, so that a job is still running when a test cancels it."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        time.sleep(30)
        return pd.DataFrame({"Y": X["X"]})


def main(url: str, token: str, database: str) -> None:
    session = Session.builder.configs({"url": url, "token": token}).create()
    session.sql(f"CREATE DATABASE {database}").collect()
    session.sql("CREATE STAGE DATA").collect()
    # y = 3x + 1 exactly, so the tests can assert every prediction.
    train = pd.DataFrame({"X": [0.0, 1.0, 2.0, 3.0]})
    model = LinearRegression().fit(train, 3.0 * train["X"] + 1.0)
    registry = Registry(session)
    registry.log_model(model, model_name="LINEAR", version_name="V1", sample_input_data=train)
    # Given, not inferred: inferring would call predict, which refuses or sleeps.
    signature = ModelSignature(
        inputs=[FeatureSpec("X", DataType.DOUBLE)], outputs=[FeatureSpec("Y", DataType.DOUBLE)]
    )
    registry.log_model(Refuser(), model_name="REFUSER", version_name="V1", signatures={"predict": signature})
    registry.log_model(Sleeper(), model_name="SLEEPER", version_name="V1", signatures={"predict": signature})
    rows = pd.DataFrame({"ID": list(range(6)), "X": [float(i) for i in range(6)]})
    session.create_dataframe(rows).write.save_as_table("INPUT")


if __name__ == "__main__":
    main(*sys.argv[1:4])
