"""One error type for everything a user can get wrong.

The CLI turns a :class:`DwnHwError` into a one-line ``error: ...`` message and exit status 2.
It subclasses ``ValueError`` so library callers can catch it the usual way.
"""


class DwnHwError(ValueError):
    """A user-facing error: the message says what is wrong and, where it can, how to fix it."""
