"""Errors the engine raises on purpose. Each carries a stable code and the HTTP status the server maps it to."""


class ShieldError(Exception):
    code = "internal"
    status = 500

    def __init__(self, message: str, option: str | None = None):
        """option: the request field the message is about; "{option}" in the message stands for its name,
        which each shell words its own way (message_for: the CLI says `--region` where the API says 'regions')."""
        self.option, self._template = option, message
        self.message = self.message_for({})
        super().__init__(self.message)

    def message_for(self, names: dict[str, str]) -> str:
        if self.option is None:
            return self._template
        return self._template.replace("{option}", names.get(self.option, f"'{self.option}'"))


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
