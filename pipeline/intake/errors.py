"""The one way the intake service refuses a request, and the size limit every endpoint enforces with it."""

from fastapi import Request


class Refused(Exception):
    """Answered with ``status_code`` and ``{"status": "error", "message": message}``; nothing is kept."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


async def read_body_within(request: Request, limit: int, too_large: Refused) -> bytes:
    """The body, refused with ``too_large`` as soon as it passes ``limit`` bytes (a declared length is
    believed first, so an oversize body is refused before it is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)
