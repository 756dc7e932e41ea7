"""LocalExecutor that loads the heavy task imports once, before it forks its workers.

LocalExecutor forks its worker processes from the scheduler, and each task
process is forked from a worker, so modules imported here are already in
memory in every task. Great Expectations alone takes about 9 s to import on a
2-core machine, which every check task would otherwise pay again.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor


class PreloadingLocalExecutor(LocalExecutor):
    def start(self) -> None:
        import great_expectations  # noqa: F401 - imported for the forked task processes
        import pandas  # noqa: F401

        import leadflow.dq.checks  # noqa: F401
        import leadflow.tasks  # noqa: F401

        super().start()
