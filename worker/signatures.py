"""Signed review decisions: who may close a pend is proved by a signature, never by who could write the topic.

A review decision travels as the contract's JSON, unchanged, with a Kafka header
(`SIGNATURE_HEADER`) that holds a JWS (RFC 7515) in compact form with a detached payload
(Appendix F): its payload is the message value, byte for byte. The algorithm is Ed25519
(RFC 9864's fully specified name); the protected header names the key (`kid`: the key's JWK
thumbprint, RFC 7638) so keys can rotate: a worker trusts every public key in its verification
folder, and a retired key is removed from it. The cryptography is joserfc's (over
`cryptography`); nothing here signs or verifies by hand.

The workbench and `claims-worker review publish` sign with the private key
(`CLAIMS_REVIEW_SIGNING_KEY`); the worker verifies with the public keys
(`CLAIMS_REVIEW_VERIFY_KEYS`). A worker with no verification key refuses every review.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

SIGNATURE_HEADER = "claims-review-signature"
"""The Kafka header that carries a review's detached JWS."""
ALGORITHM = "Ed25519"
"""The only algorithm accepted: a signature naming any other (`none`, HS256, ...) is refused."""
PRIVATE_KEY_FILE = "review-signing.pem"
"""The private key's file name in a folder `review keys new` writes."""
PUBLIC_SUFFIX = ".pub.pem"
"""Public key files end so; the part before is the key id."""
MAX_SIGNATURE_BYTES = 1024
"""A detached Ed25519 JWS is about 200 bytes: a larger header is no signature of ours."""


class Unverified(Exception):
    """A review whose signature is missing, malformed, from an unknown key, or wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    """A private key and its id."""

    key: OKPKey
    kid: str

    def sign(self, value: bytes) -> bytes:
        """The detached JWS of a message value, for `SIGNATURE_HEADER`."""
        token = jws.serialize_compact({"alg": ALGORITHM, "kid": self.kid}, value, self.key, algorithms=[ALGORITHM])
        return jws.detach_content(token).encode()


@dataclass(frozen=True)
class VerifyKeys:
    """The public keys a worker trusts, by key id (none: every review is refused)."""

    keys: dict[str, OKPKey]

    def verify(self, value: bytes, signature: bytes | None) -> str:
        """Check a review's signature over its value; return the key id that signed it.

        Raises:
            Unverified: no signature, not a detached JWS, another algorithm, an unknown key, or a
                signature that does not match the value.
        """
        if not self.keys:
            raise Unverified("this worker has no review verification key: every review is refused")
        if not signature:
            raise Unverified(f"no {SIGNATURE_HEADER} header")
        if len(signature) > MAX_SIGNATURE_BYTES:
            raise Unverified(f"the {SIGNATURE_HEADER} header is {len(signature)} bytes, not a signature")
        try:
            token = signature.decode("ascii")
            protected, payload, _ = token.split(".")
        except (UnicodeDecodeError, ValueError):
            raise Unverified("the signature is not a compact JWS") from None
        if payload:
            raise Unverified("the signature must not carry the review itself (a detached JWS)")
        try:
            header = jws.extract_compact(f"{protected}..{_}".encode(), payload=value).headers()
        except (JoseError, ValueError):
            raise Unverified("the signature's header cannot be read") from None
        if header.get("alg") != ALGORITHM:
            raise Unverified(f"algorithm {str(header.get('alg'))[:20]!r} is not {ALGORITHM}")
        claimed = header.get("kid")
        kid = claimed if isinstance(claimed, str) else ""
        key = self.keys.get(kid)
        if key is None:
            raise Unverified(f"key {str(claimed)[:64]!r} is not a known review key")
        try:
            jws.deserialize_compact(token, key, payload=value, algorithms=[ALGORITHM])
        except (JoseError, ValueError):
            raise Unverified(f"the signature does not match the review (key {kid})") from None
        return kid


def key_id(key: OKPKey) -> str:
    """A key's id: its JWK thumbprint (RFC 7638), the same for the private and the public half."""
    return str(key.thumbprint())


def new_key_pair(directory: Path) -> str:
    """Write a new Ed25519 pair into `directory`: the private key 0600, the public one named by its id.

    Returns:
        The key id.

    Raises:
        FileExistsError: the folder already holds a private key (never overwritten).
    """
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / PRIVATE_KEY_FILE
    key = OKPKey.generate_key("Ed25519")
    kid = key_id(key)
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.as_pem(private=True))
    (directory / f"{kid}{PUBLIC_SUFFIX}").write_bytes(key.as_pem(private=False))
    return kid


def load_signing_key(path: Path) -> SigningKey:
    """Read a private key file; refuse one that others can read.

    Raises:
        ValueError: the file is readable by group or others, or holds no Ed25519 private key.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{path}: the review signing key is readable by others (mode {mode:04o}); chmod 600 it")
    try:
        key = OKPKey.import_key(path.read_bytes())
    except (JoseError, ValueError, TypeError):
        raise ValueError(f"{path}: not an Ed25519 private key (PEM)") from None
    if not key.is_private or key.curve_name != "Ed25519":
        raise ValueError(f"{path}: not an Ed25519 private key (PEM)")
    return SigningKey(key, key_id(key))


def load_verify_keys(path: Path | None) -> VerifyKeys:
    """Read the public keys a worker trusts: one PEM file, or every `*.pub.pem` in a folder.

    Raises:
        ValueError: a file holds no Ed25519 public key.
    """
    if path is None:
        return VerifyKeys({})
    files = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
    keys: dict[str, OKPKey] = {}
    for file in files:
        try:
            key = OKPKey.import_key(file.read_bytes())
        except (JoseError, ValueError, TypeError):
            raise ValueError(f"{file}: not an Ed25519 public key (PEM)") from None
        if key.curve_name != "Ed25519":
            raise ValueError(f"{file}: not an Ed25519 public key (PEM)")
        public = OKPKey.import_key(key.as_pem(private=False))  # only the public half is kept
        keys[key_id(public)] = public
    return VerifyKeys(keys)
