"""Colab's error for a request the browser side refused or could not answer."""


class MessageError(RuntimeError):
    """Raised by Colab when, for example, the student does not grant Drive access."""
