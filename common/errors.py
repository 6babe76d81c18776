"""The one error a user can fix: every command prints it as one line on stderr and exits 2 (:func:`common.cli.run_main`)."""


class UserError(Exception):
    """An error the user can fix (bad argument, missing data, corrupt file): no traceback."""
