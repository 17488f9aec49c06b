"""Photo Shield: irreversibly replaces faces in photos and strips their metadata before they are posted."""

__version__ = "0.1.0"
