"""Mirror of ``snowflake.core.task``: ``Cron``, ``StoredProcedureCall``; DAGs are in ``dagv1``."""

from runbatch.core.task._procedure import StoredProcedureCall
from runbatch.core.task.cron import Cron

__all__ = ["Cron", "StoredProcedureCall"]
