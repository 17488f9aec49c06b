"""Errors the engine raises on purpose. Each carries a stable code and the HTTP status the server maps it to."""


class ShieldError(Exception):
    code = "internal"
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadOptions(ShieldError):
    code, status = "bad_options", 400


class TooLarge(ShieldError):
    code, status = "too_large", 413


class UnsupportedImage(ShieldError):
    code, status = "unsupported_media_type", 415


class UndecodableImage(ShieldError):
    code, status = "undecodable_image", 422


class ProtectionFailed(ShieldError):
    """The engine could not guarantee a protected result; nothing must be released."""

    code, status = "protection_failed", 500


class UndecodableVideo(ShieldError):
    code, status = "undecodable_video", 422


class Cancelled(ShieldError):
    code, status = "cancelled", 409


class NotFound(ShieldError):
    code, status = "not_found", 404


class NotReady(ShieldError):
    code, status = "not_ready", 409
