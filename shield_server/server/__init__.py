"""The local server: Flask app (app.py), waitress runner (serve.py), pairing token storage (pairing.py)."""
