"""`touchline demo` as a newcomer runs it: leads crawled in Chromium flow into touches, sandbox-sent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from events.settings import Settings


def test_the_demo_crawls_leads_and_turns_them_into_touches_within_a_minute(settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TOUCHLINE_DATABASE_URL": settings.database_url or "",
        "TOUCHLINE_NATS_URL": settings.nats_url or "",
        "TOUCHLINE_SUBJECT_PREFIX": settings.subject_prefix,
        "TOUCHLINE_STREAM_NAME": settings.stream_name,
        "TOUCHLINE_HTTP_PORT": "0",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateways.cli",
            "demo",
            "--seconds",
            "40",
            "--listings",
            "8",
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Touchline demo ready" in out and "craigslist miami started" in out
    token = re.search(r"token: (tl_\S+)", out)
    assert token is not None and re.search(r"console: http://127\.0\.0\.1:\d+/console/login", out)
    final = re.search(r"demo stopped: (\d+) leads, (\d+) touch runs \((\d+) dispatched\)", out)
    assert final is not None, out
    leads, touches, _ = (int(g) for g in final.groups())
    assert leads >= 1 and touches >= leads  # every lead with a phone got its campaign's touch runs
