import pytest

from server_process import start_server


@pytest.fixture(scope="session")
def shield_server(tmp_path_factory):
    """One real server for the whole session (models load once); tests that stop it start their own."""
    server = start_server(tmp_path_factory.mktemp("shield-config"))
    yield server
    server.stop()
