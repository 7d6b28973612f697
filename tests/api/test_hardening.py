"""Issue "hardening": slow clients, request smuggling, JSON for protocol
errors, CORS, Content-Type checks, trusted proxies, start-up checks. Every
wait here has a deadline; nothing sleeps a fixed time to let the server
catch up."""
import os
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import API, BINARY, describe, expect, expect_error, unique

START = 10.0


def run_until_exit(env, timeout=START):
    """Runs iotflowd expecting it to refuse to start; returns (rc, stderr)."""
    with tempfile.TemporaryDirectory(prefix="iotflowd-hard-") as d:
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IOTFLOW_HOST": "127.0.0.1",
                "IOTFLOW_PORT": "1", "IOTFLOW_DATA_DIR": os.path.join(d, "data"), **env}
        p = subprocess.run([BINARY], env=full, capture_output=True, timeout=timeout)
        return p.returncode, p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------- start-up checks

def test_short_admin_token_refused():
    rc, err = run_until_exit({"IOTFLOW_ADMIN_TOKEN": "short-token"})
    assert rc == 2, err
    assert "IOTFLOW_ADMIN_TOKEN" in err and "16" in err and "/dev/urandom" in err, err


def test_telemetry_url_password_not_logged():
    rc, err = run_until_exit({"IOTFLOW_TELEMETRY_URL": "nosuch://user:S3cretPW@host/db",
                              "IOTFLOW_ADMIN_TOKEN": ""})
    assert rc != 0, err
    assert "telemetry" in err, err
    assert "S3cretPW" not in err, err
