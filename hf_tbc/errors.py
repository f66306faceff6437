"""The one error class that means "the input is wrong": recipes print it as one line and exit 2.

Anything else that escapes a recipe is a bug or an outside failure, and keeps its traceback.
"""


class UsageError(ValueError):
    """Bad input: a flag, file, record or setting the user can fix. The message names the value and the fix."""
