"""Exception and warning types shared by every subpackage.

User mistakes (bad files, bad values, bad options) raise :class:`InvalidInputError`; the CLI prints
it as one line naming the file and the problem, and exits with status 2.
"""

from __future__ import annotations

import errno


class InvalidInputError(ValueError):
    """A user-supplied input (file, array, option) is unusable.

    Parameters
    ----------
    problem : str
        What is wrong, stated so that the user can fix it ("expected 10000 rows, got 9999").
    source : str, optional
        The file name or argument the problem was found in; prefixed to the message.
    """

    def __init__(self, problem: str, source: str | None = None) -> None:
        self.problem = problem
        self.source = source
        super().__init__(f"{source}: {problem}" if source else problem)

    def __reduce__(self):
        # pickled as (problem, source), not the joined message: an error raised in another
        # process (a Dask worker) arrives with its source, not its message as the problem
        return (type(self), (self.problem, self.source))

    def with_source(self, source: str) -> InvalidInputError:
        """Return the same error attributed to ``source`` (keeps an existing source)."""
        if self.source:
            return self
        return InvalidInputError(self.problem, source)


class NotFittedError(InvalidInputError, AttributeError):
    """A model (growth chart, surrogate) was used before ``fit`` or ``load``.

    Also an :class:`AttributeError`, as scikit-learn's own ``NotFittedError``: ``hasattr(chart,
    "bic_")`` is False before fitting instead of raising."""


class NotYetAvailableError(RuntimeError):
    """A feature that is planned but not implemented in this version was requested."""


class ConvergenceWarning(UserWarning):
    """An optimisation stopped before meeting its convergence criterion."""


class InputWarning(UserWarning):
    """An input was usable only after a small automatic repair (e.g. a CDF rescaled to end at 1)."""


class FitQualityWarning(UserWarning):
    """A fit finished but its result needs care: flagged as poor, an interval not calibrated for
    its budget or scan length, or a check of the verdict that could not be made."""


class SurrogateTimingWarning(InputWarning):
    """Subjects' timing outside what the surrogate weights were trained on
    (``PretrainedSurrogate.check_timing``); ``cohort`` warns once for all subjects before the
    work and silences the repeats of each lockstep group."""


class MembersChangedWarning(UserWarning):
    """A lockstep group's checkpoints were written with other members (one subject failed its
    inputs in one run and not the other): its subjects are fitted again from the start."""


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: no later write can succeed
    either, so long runs stop (and resume once there is room) instead of failing each subject."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
