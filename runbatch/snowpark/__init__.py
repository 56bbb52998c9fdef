"""Mirror of ``snowflake.snowpark``: Session, DataFrame, Column and Row (functions in ``.functions``)."""

from runbatch.snowpark.column import Column
from runbatch.snowpark.dataframe import DataFrame, DataFrameReader, RelationalGroupedDataFrame
from runbatch.snowpark.row import Row
from runbatch.snowpark.session import FileOperation, GetResult, PutResult, Session, get_active_session

__all__ = [
    "Column",
    "DataFrame",
    "DataFrameReader",
    "FileOperation",
    "GetResult",
    "PutResult",
    "RelationalGroupedDataFrame",
    "Row",
    "Session",
    "get_active_session",
]
