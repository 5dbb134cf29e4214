"""Signed reviews: what a signature proves, and what it refuses."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from worker.signatures import (
    PRIVATE_KEY_FILE,
    Unverified,
    load_signing_key,
    load_verify_keys,
    new_key_pair,
)

REVIEW = json.dumps({"event_id": "a", "lines": [{"line_number": 1, "outcome": "denied"}]}).encode()


class TestSignatures:
    def test_a_signature_names_its_key_and_verifies_the_exact_bytes(self, tmp_path: Path) -> None:
        kid = new_key_pair(tmp_path)
        key = load_signing_key(tmp_path / PRIVATE_KEY_FILE)
        keys = load_verify_keys(tmp_path)
        signature = key.sign(REVIEW)
        assert keys.verify(REVIEW, signature) == kid
        with pytest.raises(Unverified, match="does not match"):
            keys.verify(REVIEW.replace(b"denied", b"approved"), signature)

    def test_keys_rotate_by_adding_and_removing_public_keys(self, tmp_path: Path) -> None:
        old, new = tmp_path / "old", tmp_path / "new"
        new_key_pair(old)
        new_kid = new_key_pair(new)
        trusted = tmp_path / "trusted"
        trusted.mkdir()
        for public in [*old.glob("*.pub.pem"), *new.glob("*.pub.pem")]:
            (trusted / public.name).write_bytes(public.read_bytes())
        keys = load_verify_keys(trusted)
        assert keys.verify(REVIEW, load_signing_key(old / PRIVATE_KEY_FILE).sign(REVIEW))
        assert keys.verify(REVIEW, load_signing_key(new / PRIVATE_KEY_FILE).sign(REVIEW)) == new_kid
        for public in old.glob("*.pub.pem"):
            (trusted / public.name).unlink()
        with pytest.raises(Unverified, match="not a known review key"):
            load_verify_keys(trusted).verify(REVIEW, load_signing_key(old / PRIVATE_KEY_FILE).sign(REVIEW))

    def test_no_key_no_signature_another_algorithm_or_an_attached_payload_is_refused(self, tmp_path: Path) -> None:
        new_key_pair(tmp_path)
        key = load_signing_key(tmp_path / PRIVATE_KEY_FILE)
        keys = load_verify_keys(tmp_path)
        with pytest.raises(Unverified, match="no review verification key"):
            load_verify_keys(None).verify(REVIEW, key.sign(REVIEW))
        with pytest.raises(Unverified, match="no claims-review-signature"):
            keys.verify(REVIEW, None)
        none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": key.kid}).encode()).rstrip(b"=")
        with pytest.raises(Unverified, match="is not Ed25519"):
            keys.verify(REVIEW, none_header + b"..")
        protected, _, signature = key.sign(REVIEW).partition(b"..")
        attached = protected + b"." + base64.urlsafe_b64encode(REVIEW).rstrip(b"=") + b"." + signature
        with pytest.raises(Unverified, match="detached"):
            keys.verify(REVIEW, attached)

    def test_a_private_key_others_can_read_is_refused_and_never_overwritten(self, tmp_path: Path) -> None:
        new_key_pair(tmp_path)
        private = tmp_path / PRIVATE_KEY_FILE
        assert private.stat().st_mode & 0o777 == 0o600
        with pytest.raises(FileExistsError):
            new_key_pair(tmp_path)
        private.chmod(0o644)
        with pytest.raises(ValueError, match="readable by others"):
            load_signing_key(private)
