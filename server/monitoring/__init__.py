"""Model monitors: Snowflake's ML Observability over logged predictions and actuals.

``service`` keeps monitors and their stored metrics, ``refresh`` reads a monitor's source and
recomputes its metrics (``metrics`` holds the arithmetic), ``functions`` answers the
MODEL_MONITOR_*_METRIC table functions of the SQL layer.
"""
