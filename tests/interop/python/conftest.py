"""Session fixtures: one Gatehouse server for the whole run, its demo tenant, and a CA bundle.

The machine's environment sets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE / SSL_CERT_FILE to the system
bundle, which silently overrides `verify=` in requests (and so in MSAL). We point all three at a
bundle = system bundle + Gatehouse's CA, for this test process.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gatehouse_harness import GatehouseServer  # noqa: E402

# MSAL Python's username/password flow first calls user realm discovery at
# https://{hostname}/common/userrealm/{user} -- it keeps the host name but DROPS THE PORT
# (msal/authority.py: Authority.instance = urlparse(authority).hostname), so against
# https://localhost:PORT it connects to localhost:443 and raises ConnectionError. No server
# behaviour can fix that on a non-443 port. MSAL skips the call for hosts in this class-level
# set (it adds hosts there itself after a 404), so we pre-seed it.
import msal.authority  # noqa: E402

msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")


def _ns(d):
    if isinstance(d, dict):
        return SimpleNamespace(**{k: _ns(v) for k, v in d.items()})
    return d


@pytest.fixture(scope="session")
def server():
    srv = GatehouseServer(name="gatehouse")
    srv.start()
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    for k in saved:
        os.environ[k] = str(srv.bundle_path)
    try:
        yield srv
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if os.environ.get("GATEHOUSE_KEEP_LOG"):
            print(f"\n[gatehouse] server log: {srv.log_path}")


@pytest.fixture(scope="session")
def demo(server) -> dict:
    return server.demo


@pytest.fixture(scope="session")
def tenant(demo):
    """Attribute access to the demo tenant: tenant.apps.daemon.client_id, tenant.users.user.username, ..."""
    return _ns(demo)


@pytest.fixture(scope="session")
def authority(demo) -> str:
    return demo["authority"]


@pytest.fixture(scope="session")
def tid(demo) -> str:
    return demo["tenant_id"]


@pytest.fixture(scope="session")
def base(server) -> str:
    return server.base


@pytest.fixture(scope="session")
def token_endpoint(authority) -> str:
    return f"{authority}/oauth2/v2.0/token"


def pytest_report_header(config):
    return "gatehouse interop: server started by the session fixture (tests/interop/python/gatehouse_harness.py)"
