"""The job queue: one fair queue for all heavy work, and the executor that runs it."""

from modules.jobs.queue import (
    Executor,
    JobQueue,
    LocalExecutor,
    State,
    Task,
    TaskStatus,
    check_task_id,
    current_task,
    new_task_id,
)

__all__ = [
    "Executor",
    "JobQueue",
    "LocalExecutor",
    "State",
    "Task",
    "TaskStatus",
    "check_task_id",
    "current_task",
    "new_task_id",
]
