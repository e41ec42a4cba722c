"""Which task failures Prefect retries: transient ones (a network or object-store hiccup), not
those that come back every time (a full disk, a read-only store, a bad video), which would
only redo the work and delay the one clear error."""

from __future__ import annotations

import errno

PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                              errno.EPERM})


def is_permanent(error: BaseException) -> bool:
    """An OS error that a retry would meet again: no space, a quota, no permission."""
    return isinstance(error, OSError) and error.errno in PERMANENT_ERRNOS


def retry_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry unless the failure is permanent. A Failed state
    whose data is no exception (a recorded outcome, such as a bad video's) is final too."""
    return isinstance(state.data, BaseException) and not is_permanent(state.data)
