import os

import pytest

from server_process import start_server


@pytest.fixture(scope="session")
def shield_server(tmp_path_factory):
    """One real server for the whole session (models load once); tests that stop it start their own."""
    server = start_server(tmp_path_factory.mktemp("shield-config"))
    yield server
    server.stop()


def pytest_collection_modifyitems(items):
    """Run the web page's browser tests first: Playwright's sync API allows one driver per thread at a time, and
    test_extension.py keeps its own driver for the whole session once started."""
    items.sort(key=lambda item: not item.path.name.startswith("test_webpage"))


def pytest_sessionstart(session):
    """scripts/test.sh (and so CI) sets SHIELD_REQUIRE_BROWSER: there a missing browser must fail the run,
    never quietly skip the extension and web page tests."""
    if os.environ.get("SHIELD_REQUIRE_BROWSER") and not os.access("/usr/bin/chromium", os.X_OK):
        raise pytest.UsageError("SHIELD_REQUIRE_BROWSER is set but /usr/bin/chromium is missing: "
                                "install Debian's chromium (scripts/test.sh does).")
