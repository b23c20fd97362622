"""The one exception type that means "the user gave us something we cannot use"."""


class UserError(Exception):
    """A bad input (file, config, checkpoint, argument).

    Scripts print ``error: <message>`` on one line and exit non-zero, without a
    traceback; the message must say what is wrong and where.
    """
