"""The test run's review signing keys: a pair made once per run, trusted by every worker the tests start."""

from __future__ import annotations

import tempfile
from pathlib import Path

from worker.signatures import PRIVATE_KEY_FILE, SIGNATURE_HEADER, load_signing_key, load_verify_keys, new_key_pair

KEYS = Path(tempfile.mkdtemp(prefix="claims-review-keys-"))
"""The pair's folder: review-signing.pem (0600) and <key id>.pub.pem."""
KEY_ID = new_key_pair(KEYS)
SIGNING_KEY = load_signing_key(KEYS / PRIVATE_KEY_FILE)
VERIFY_KEYS = load_verify_keys(KEYS)


def signature(value: bytes) -> bytes:
    """The signature header's value for a review's bytes, by the run's key."""
    return SIGNING_KEY.sign(value)


def signed_headers(value: bytes) -> list[tuple[str, bytes]]:
    """The Kafka headers of a signed review."""
    return [(SIGNATURE_HEADER, signature(value))]
