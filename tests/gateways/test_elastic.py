"""ElasticEmail settings read as the spec says: either key name, trimmed, EMAIL_READY only with both."""

from __future__ import annotations

from gateways.elastic import MISSING_ELASTIC_ENV, elastic_env


def test_email_ready_follows_the_spec() -> None:
    assert not elastic_env({}).email_ready
    assert not elastic_env({"ELASTIC_EMAIL_API_KEY": "k"}).email_ready
    assert not elastic_env({"ELASTIC_EMAIL_API_KEY": "  ", "ELASTIC_EMAIL_FROM": "a@b.co"}).email_ready
    assert elastic_env({"ELASTICEMAIL_API_KEY": " k ", "ELASTIC_EMAIL_FROM": " a@b.co "}) == elastic_env(
        {"ELASTIC_EMAIL_API_KEY": "k", "ELASTIC_EMAIL_FROM": "a@b.co"}
    )
    assert elastic_env({"ELASTICEMAIL_API_KEY": "k", "ELASTIC_EMAIL_FROM": "a@b.co"}).email_ready
    assert "ELASTIC_EMAIL_API_KEY (or ELASTICEMAIL_API_KEY) + ELASTIC_EMAIL_FROM" in MISSING_ELASTIC_ENV
