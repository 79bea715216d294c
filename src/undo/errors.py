"""Errors that mean "your input is wrong": shown as one line naming the problem and the fix, no traceback."""


class UserError(Exception):
    """A problem with the user's input or environment that the user can fix."""
