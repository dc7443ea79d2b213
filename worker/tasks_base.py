"""The base task: one session and one transaction per run, owned here, not in the body.

Task bodies read ``self.session``; they never commit. When the body returns, the
transaction commits and then (worker.after_commit) any follow-up tasks are published. When it
raises, everything rolls back and nothing is published.

Tasks that must commit in several steps (the send task commits its gate decision before
calling Twilio) set ``transactional = False`` and open ``session_scope()`` themselves.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from celery import Task
from sqlalchemy.orm import Session

from worker.db import session_scope

__all__ = ["DbTask"]

_current: ContextVar[Session | None] = ContextVar("msgworker_task_session", default=None)


class DbTask(Task):  # type: ignore[misc]
    abstract = True
    transactional = True

    @property
    def session(self) -> Session:
        session = _current.get()
        if session is None:
            raise RuntimeError(f"{self.name}: no session (transactional=False tasks open their own)")
        return session

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.transactional:
            return super().__call__(*args, **kwargs)
        with session_scope() as session:
            token = _current.set(session)
            try:
                return super().__call__(*args, **kwargs)
            finally:
                _current.reset(token)
