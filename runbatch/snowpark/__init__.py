"""Mirror of ``snowflake.snowpark``: Session, DataFrame and Row."""

from runbatch.snowpark.dataframe import DataFrame, DataFrameReader
from runbatch.snowpark.row import Row
from runbatch.snowpark.session import FileOperation, GetResult, PutResult, Session, get_active_session

__all__ = [
    "DataFrame",
    "DataFrameReader",
    "FileOperation",
    "GetResult",
    "PutResult",
    "Row",
    "Session",
    "get_active_session",
]
