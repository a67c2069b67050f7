"""One error type for everything a user can get wrong, and one for a run stopped by Ctrl-C.

The CLI (:func:`dwn_hw.cli.run_command`, the one place that turns exceptions into messages) prints a
:class:`DwnHwError` as one ``error: ...`` line with exit status 2, and a :class:`Interrupted` (or any
``KeyboardInterrupt``) as one ``interrupted: ...`` line with exit status 130.
:class:`DwnHwError` subclasses ``ValueError`` so library callers can catch it the usual way.
"""


class DwnHwError(ValueError):
    """A user-facing error: the message says what is wrong and, where it can, how to fix it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what a command left behind and how to continue (the ``interrupted:`` line's text).

    A ``KeyboardInterrupt`` subclass, so code that does not know it still sees an interrupt.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DwnHwWarning(UserWarning):
    """Something legal but likely unwanted (collapsed thresholds, uneven class groups): the CLI prints it as one
    ``warning: ...`` line; library callers get an ordinary Python warning they can filter or turn into errors."""


def warn(message: str) -> None:
    """Issue a :class:`DwnHwWarning` (the one way dwn-hw warns)."""
    import warnings

    warnings.warn(message, DwnHwWarning, stacklevel=2)


def show(value) -> str:
    """A value as a message shows it: ``2.5``, not ``np.float64(2.5)``; strings quoted, arrays as lists."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        value = value.tolist()
    return repr(value) if isinstance(value, str) else str(value)
