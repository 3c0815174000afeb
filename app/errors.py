"""Errors shared by the queue and the code it runs.

The queue retries a job that raises :class:`TransientError` (with back-off that honours
``retry_after`` when given) and marks it failed, with the message, on anything else once the
attempts are used up. :class:`PermanentError` fails the job at once: retrying cannot help.
:class:`QuarantinedError` sets the job aside (status ``quarantined``): it is not retried, and an
operator replays it once the cause is dealt with. :class:`LeaseLost` ends a job another replica
took over: nothing more is written, and no outcome is recorded.
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base class for Tessera's own errors."""


class TransientError(TesseraError):
    """A failure that may go away by itself: GitHub 5xx, rate limits, time-outs."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(TesseraError):
    """A failure that retrying will not fix: bad payload, 404 on a deleted repository."""


class QuarantinedError(PermanentError):
    """The job keeps harming the process that runs it (its analysis ended its worker twice)."""


class LeaseLost(TesseraError):
    """This replica no longer holds the job: its lease ran out while the process stalled, and
    another replica runs the job now. The job stops before its next side effect (a comment, a
    check run, a notification) and records no outcome: the other replica's run is the one that counts."""


class ConfigError(TesseraError):
    """A setting from the environment or a file that Tessera cannot use; the message says which."""
