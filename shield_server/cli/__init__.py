"""The `shield` command: redact photos on disk, run the local server, pair the extension.

files.py finds the inputs and names the outputs, writing.py reads and writes them safely, workers.py
protects one file (in a worker process for batches), command.py is the command line itself."""

from shield_server.cli.command import main

__all__ = ["main"]
