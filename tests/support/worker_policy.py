"""What the suite's workers may reach: its fake services listen on loopback and its build contexts
and git repositories are temporary directories, so the test workers allow-list exactly those. The
security tests (tests/security/) use the default or the dev stack's policy instead."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

from activities.bake import BakeSettings
from activities.egress import EgressPolicy

TEMP = Path(tempfile.gettempdir()).resolve()
TEST_EGRESS = EgressPolicy(
    allow_cidrs=[ipaddress.ip_network("127.0.0.0/8")],
    allow_url_prefixes=[f"file://{TEMP}/"],
)
TEST_BAKE = BakeSettings(allowed_context_dirs=[TEMP])
