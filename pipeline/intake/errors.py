"""The one way the intake service refuses a request (the checks that refuse are in ``body.py``)."""


class Refused(Exception):
    """Answered with ``status_code`` and ``{"status": "error", "message": message}``; nothing is kept."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message
