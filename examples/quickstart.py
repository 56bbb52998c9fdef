"""The runbatch quickstart: train, log, and run a batch job over a million rows, no server needed.

    python examples/quickstart.py [--rows 1000000] [--replicas 2]

Only the import prefix and the connection line differ from the same code on Snowflake.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--home", default=None, help="runbatch home (default $RUNBATCH_HOME or ~/.runbatch)")
    args = parser.parse_args()

    # The connection line: no URL, so the control plane runs in this process (SQLite, local stages).
    session = Session.builder.configs({"home": args.home} if args.home else {}).create()
    session.sql("CREATE DATABASE IF NOT EXISTS QUICKSTART").collect()
    session.use_database("QUICKSTART")
    session.sql("CREATE STAGE IF NOT EXISTS RESULTS").collect()

    # A small scikit-learn model on synthetic data.
    rng = np.random.default_rng(7)
    features = [f"F{i}" for i in range(16)]
    train = pd.DataFrame(rng.normal(size=(20_000, 16)), columns=features)
    labels = (train[features[:4]].sum(axis=1) + rng.normal(scale=0.5, size=len(train)) > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(train, labels)

    registry = Registry(session=session, database_name="QUICKSTART", schema_name="PUBLIC")
    mv = registry.log_model(model, model_name="CHURN", sample_input_data=train.head(50), comment="quickstart")
    print(
        f"Logged {mv.fully_qualified_model_name} version {mv.version_name}: "
        f"functions {[f['name'] for f in mv.show_functions()]}"
    )

    data = pd.DataFrame(rng.normal(size=(args.rows, 16)), columns=features)
    data.insert(0, "CUSTOMER_ID", np.arange(args.rows))
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(base_stage_location="@RESULTS/"),
        job_spec=JobSpec(function_name="predict_proba", replicas=args.replicas),
    )
    status = job.wait(show_progress=True)
    info = job.info
    if status != "DONE":
        print(job.get_logs())
        raise SystemExit(f"Job {job.name} ended {status}: {info.message}")
    assert info.started_at is not None and info.finished_at is not None
    seconds = (info.finished_at - info.started_at).total_seconds()
    files = session.sql(f"LIST {info.output_location}").collect()
    print(f"Job:        {job.id} {status}")
    print(f"Output:     {info.output_location} ({len(files)} files including _SUCCESS)")
    print(f"Rows:       {info.rows_done:,} of {info.rows_total:,} in {info.shards_done} shards")
    print(
        f"Throughput: {info.rows_done / seconds:,.0f} rows/s ({seconds:.2f}s from first shard start to commit)"
    )
    preview = (
        session.read.option("pattern", ".*[.]parquet").parquet(info.output_location).limit(5).to_pandas()
    )
    print(preview[["CUSTOMER_ID", "F0", "F1", "output_feature_0", "output_feature_1"]].to_string(index=False))


if __name__ == "__main__":
    main()
