"""Who may decide, tried as an attacker inside a payer's network would: every door, on the real broker.

The attack list (issue 33), one test each:
- forged reviews on `claims.reviews`: unsigned, signed by an unknown key, altered after signing,
  `alg: none`; each of seven pends (an invalid NPI, an invalid diagnosis, a service date after
  receipt, a J3490 line without an NDC, a veterinary NDC, a Supplement claim waiting on
  Medicare, a clinical review) stays open;
- a signed review no queue rule allows: approving a data-correction pend, a reviewer without
  the queue's role;
- reviews that make no sense: an approval carrying CARC 18 and RARC N290, codes not in the code
  table (CARC 999, RARC ZZ9999), `decided_at` in 1970, a 900 KiB review padded with an unknown field;
- the workbench: a trusted header on a public address without the proxy's secret (refused at
  start), a request naming any reviewer without the secret, 300 wrong tokens (throttled), a
  cross-origin sign-in (login CSRF), the session cookie (HttpOnly, SameSite, expiry, Secure over
  TLS, a logout that ends it), a tokens file others can read, 404 and 405 pages' headers.
(The browser's view of a refused review and of a deny-only queue is in test_workbench.py.)
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import ssl
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.builders import VETERINARY_NDC, claim_event, ketamine_line, service_line, to_bytes
from tests.integration.conftest import CLI, Deployment, decode, free_port, produce, wait_for
from tests.signing import signed_headers
from worker.signatures import PRIVATE_KEY_FILE, SIGNATURE_HEADER, load_signing_key, new_key_pair

pytestmark = pytest.mark.integration

BAD_NPI = "1234567890"  # fails the check digit


def pend_claims() -> dict[str, dict[str, Any]]:
    """Seven claims that pend, one member each, by what they wait for."""
    return {
        "invalid_npi": claim_event(claim_id="ATK-NPI", provider={"npi": BAD_NPI, "participating": True}),
        "invalid_diagnosis": claim_event(claim_id="ATK-DX", diagnoses=["F42"]),
        "dos_after_receipt": claim_event(claim_id="ATK-DOS", lines=[ketamine_line(service_date="2025-09-05")]),
        "ndc_missing": claim_event(claim_id="ATK-NDC", lines=[ketamine_line(ndc=None)]),
        "veterinary_ndc": claim_event(claim_id="ATK-VET", lines=[ketamine_line(ndc=VETERINARY_NDC)]),
        "supplement_waiting": claim_event(claim_id="ATK-SUP", line_of_business="medicare_supplement"),
        "clinical_review": claim_event(
            claim_id="ATK-CLIN", diagnoses=["R52"], lines=[ketamine_line(1), service_line(2, "99213")]
        ),
    }


def review_of(pend: dict[str, Any], outcome: str = "approved", **overrides: Any) -> dict[str, Any]:
    lines = [
        {"line_number": line["line_number"], "outcome": outcome, **({"carc": ["50"]} if outcome == "denied" else {})}
        for line in pend["lines"]
        if line["outcome"] == "pended"
    ]
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "pend_event_id": pend["event_id"],
        "claim_id": pend["claim_id"],
        "member_id": pend["member_id"],
        "reviewer_id": "attacker-0",
        "reviewer_roles": ["claims_examiner", "cob_specialist", "clinical_reviewer", "policy_analyst"],
        "decided_at": datetime.now(UTC).isoformat(),
        "lines": lines,
    }
    body.update(overrides)
    return body


@pytest.fixture
def pends(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The seven claims decided by a worker: their pends, by name."""
    claims = pend_claims()
    deployment.produce(
        [to_bytes(c) for c in claims.values()], [c["claim"]["claim_id"].encode() for c in claims.values()]
    )
    deployment.start_worker()
    outputs = decode(deployment.consume(len(claims)))
    by_claim = {o["claim_id"]: o for o in outputs}
    found = {name: by_claim[claim["claim"]["claim_id"]] for name, claim in claims.items()}
    assert {name: o["event_type"] for name, o in found.items()} == dict.fromkeys(claims, "claim.pended")
    return found


def send(deployment: Deployment, reviews: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
    settings = deployment.settings
    values = [value for value, _ in reviews]
    keys = [json.loads(value).get("member_id", "x").encode() if value.startswith(b"{") else b"x" for value in values]
    asyncio.run(
        produce(settings.bootstrap_servers, settings.reviews_topic, values, keys, [headers for _, headers in reviews])
    )


def outcomes(deployment: Deployment, total: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every output once `total` have come: the finals a review made, and each dead letter's kind by review id."""
    outputs = decode(deployment.consume(total, timeout=120))
    finals = [o for o in outputs if o.get("review_event_id")]
    dead = {str(o.get("source_event_id")): o["kind"] for o in outputs if o["event_type"] == "claim.dead_lettered"}
    return finals, dead


def test_forged_reviews_change_nothing(deployment: Deployment, pends: dict[str, dict[str, Any]]) -> None:
    stranger = Path(tempfile.mkdtemp())
    new_key_pair(stranger)
    unknown_key = load_signing_key(stranger / PRIVATE_KEY_FILE)
    attempts: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    ids: list[str] = []
    for pend in pends.values():
        unsigned = review_of(pend)
        strangers = review_of(pend)
        altered = review_of(pend, outcome="denied")
        signed_value = json.dumps(altered).encode()
        tampered = json.dumps({**altered, "lines": review_of(pend)["lines"]}).encode()  # denial turned approval
        unsecured = review_of(pend)
        header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=")
        attempts += [
            (json.dumps(unsigned).encode(), []),
            (json.dumps(strangers).encode(), [(SIGNATURE_HEADER, unknown_key.sign(json.dumps(strangers).encode()))]),
            (tampered, signed_headers(signed_value)),
            (json.dumps(unsecured).encode(), [(SIGNATURE_HEADER, header + b"..")]),
        ]
        ids += [unsigned["event_id"], strangers["event_id"], altered["event_id"], unsecured["event_id"]]
    send(deployment, attempts)
    finals, dead = outcomes(deployment, len(pends) + len(attempts))
    assert finals == []
    assert {dead.get(review_id) for review_id in ids} == {"review_unauthenticated"}


def test_a_signed_review_the_queue_does_not_allow_changes_nothing(
    deployment: Deployment, pends: dict[str, dict[str, Any]]
) -> None:
    approve_correction = review_of(pends["invalid_npi"])  # data_correction: deny only
    approve_cob = review_of(pends["supplement_waiting"])  # coordination_of_benefits: deny only
    wrong_role = review_of(pends["clinical_review"], reviewer_roles=["claims_examiner"])
    no_role = review_of(pends["clinical_review"], reviewer_roles=[])
    attempts = [approve_correction, approve_cob, wrong_role, no_role]
    send(deployment, [(value, signed_headers(value)) for value in (json.dumps(r).encode() for r in attempts)])
    finals, dead = outcomes(deployment, len(pends) + len(attempts))
    assert finals == []
    assert [dead.get(r["event_id"]) for r in attempts] == ["review_not_allowed"] * 4


def test_reviews_that_make_no_sense_change_nothing(deployment: Deployment, pends: dict[str, dict[str, Any]]) -> None:
    pend = pends["clinical_review"]
    approved_with_codes = review_of(pend)
    approved_with_codes["lines"][0].update(carc=["18"], rarc=["N290"])
    unknown_codes = review_of(pend, outcome="denied")
    unknown_codes["lines"][0].update(carc=["999"], rarc=["ZZ9999"])
    in_1970 = review_of(pend, outcome="denied", decided_at="1970-01-01T00:00:00Z")
    padded = review_of(pend, outcome="denied", padding="x" * 900 * 1024)
    unknown_field = review_of(pend, outcome="denied", approve_anyway=True)
    attempts = [approved_with_codes, unknown_codes, in_1970, padded, unknown_field]
    send(deployment, [(value, signed_headers(value)) for value in (json.dumps(r).encode() for r in attempts)])
    finals, dead = outcomes(deployment, len(pends) + len(attempts))
    assert finals == []
    assert [dead.get(r["event_id"]) for r in attempts[:3]] == ["review_invalid"] * 3
    sensible_ids = {r["event_id"] for r in attempts[:3]}
    others = decode(deployment.consume(len(pends) + len(attempts), timeout=30))
    kinds = sorted(
        o["kind"]
        for o in others
        if o["event_type"] == "claim.dead_lettered" and o.get("source_event_id") not in sensible_ids
    )
    assert kinds == ["schema_violation", "too_large"]

    # The same pend, reviewed as the queue allows by a reviewer with its role: closed.
    fair = review_of(pend, outcome="denied", reviewer_id="RV-CLIN", reviewer_roles=["clinical_reviewer"])
    value = json.dumps(fair).encode()
    send(deployment, [(value, signed_headers(value))])
    finals, _ = outcomes(deployment, len(pends) + len(attempts) + 1)
    assert [f["review_event_id"] for f in finals] == [fair["event_id"]]


# --- the workbench's doors -----------------------------------------------------------------------


def start_workbench(
    deployment: Deployment, *options: str, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    stderr_path = deployment.tmp / f"workbench-{port}.stderr"
    command = [
        CLI,
        "review",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        str(deployment.tmp / f"wb-{port}.db"),
    ]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen([*command, *options], env=deployment.env(free_port()), stderr=stderr)
    deployment.processes.append(process)
    return process, port, stderr_path


def wait_up(port: int, process: subprocess.Popen[bytes], tls: bool = False) -> None:
    def up() -> bool:
        assert process.poll() is None, "the workbench stopped"
        try:
            status, _, _ = request(port, "GET", "/healthz", tls=tls)
        except OSError:
            return False
        return status == 200

    wait_for(up, 30, "the workbench")


def request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
    tls: bool = False,
) -> tuple[int, http.client.HTTPMessage, str]:
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # our own self-signed loopback server
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = urlencode(body)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=data, headers=sent)
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read().decode(errors="replace")
    finally:
        connection.close()


def tokens(deployment: Deployment, mode: int = 0o600) -> Path:
    path = deployment.tmp / f"tokens-{mode:o}"
    path.write_text("RV-5001 token-5001-abcdefghijklmnop clinical_reviewer\n")
    path.chmod(mode)
    return path


def login_form(port: int, tls: bool = False) -> tuple[str, str]:
    """The sign-in page's pre-session cookie and CSRF token."""
    status, headers, page = request(port, "GET", "/login", tls=tls)
    assert status == 200
    cookie = headers.get_all("Set-Cookie")[0].split(";")[0]
    csrf = page.split('name=csrf value="')[1].split('"')[0]
    return cookie, csrf


def test_a_trusted_header_beyond_loopback_needs_the_proxy_s_secret(deployment: Deployment) -> None:
    process, _, stderr = start_workbench(deployment, "--trusted-header", "X-Forwarded-User", host="0.0.0.0")  # noqa: S104 - the attack
    assert process.wait(timeout=30) == 3
    assert "needs --proxy-secret-file" in stderr.read_text()

    secret = deployment.tmp / "proxy-secret"
    secret.write_text("s" * 40)
    secret.chmod(0o600)
    process, port, _ = start_workbench(
        deployment, "--trusted-header", "X-Forwarded-User", "--proxy-secret-file", str(secret)
    )
    wait_up(port, process)
    assert request(port, "GET", "/", headers={"X-Forwarded-User": "anyone-at-all"})[0] == 401
    proxied = {"X-Forwarded-User": "RV-5001", "X-Workbench-Proxy-Secret": "s" * 40}
    assert request(port, "GET", "/", headers=proxied)[0] == 200


def test_sign_in_is_throttled_csrf_checked_and_its_session_ends(deployment: Deployment) -> None:
    process, port, _ = start_workbench(deployment, "--tokens", str(tokens(deployment)))
    wait_up(port, process)
    cookie, csrf = login_form(port)

    def sign_in(token: str, reviewer: str = "RV-5001", **extra: str) -> tuple[int, http.client.HTTPMessage, str]:
        headers = {"Cookie": cookie, **extra}
        return request(
            port, "POST", "/login", headers=headers, body={"csrf": csrf, "reviewer": reviewer, "token": token}
        )

    # Login CSRF: a form posted from another site, even with the right token, signs no one in.
    status, headers, _ = sign_in("token-5001-abcdefghijklmnop", Origin="https://evil.example")
    assert status == 403
    assert not any("claims_review_session" in c for c in headers.get_all("Set-Cookie") or [])
    status, _, _ = request(
        port, "POST", "/login", body={"reviewer": "RV-5001", "token": "token-5001-abcdefghijklmnop"}
    )  # no pre-session cookie, no CSRF token
    assert status == 403

    # A valid sign-in: the cookie is HttpOnly, SameSite=Strict, expires; sign-out ends the session.
    status, headers, _ = sign_in("token-5001-abcdefghijklmnop")
    assert status == 303
    session = next(c for c in headers.get_all("Set-Cookie") if c.startswith("claims_review_session="))
    assert "HttpOnly" in session
    assert "SameSite=Strict" in session
    assert "Max-Age=28800" in session
    assert "Secure" not in session  # plain HTTP on loopback: Secure only over TLS (below)
    session_cookie = session.split(";")[0]
    status, _, page = request(port, "GET", "/", headers={"Cookie": session_cookie})
    assert status == 200
    logout_csrf = page.split('action=/logout class=inline><input type=hidden name=csrf value="')[1].split('"')[0]
    assert request(port, "POST", "/logout", headers={"Cookie": session_cookie}, body={"csrf": logout_csrf})[0] == 303
    assert request(port, "GET", "/", headers={"Cookie": session_cookie})[0] == 303  # back to sign-in

    # 300 wrong tokens: refused after the fifth, and then even the right one is, for 15 minutes.
    answers = [sign_in(f"wrong-token-{n:04d}-abcdefgh")[0] for n in range(300)]
    assert answers[:5] == [401] * 5
    assert set(answers[5:]) == {429}
    assert sign_in("token-5001-abcdefghijklmnop")[0] == 429


def test_over_tls_the_cookie_is_secure(deployment: Deployment) -> None:
    cert, key = deployment.tmp / "cert.pem", deployment.tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    process, port, _ = start_workbench(
        deployment, "--tokens", str(tokens(deployment)), "--tls-cert", str(cert), "--tls-key", str(key)
    )
    wait_up(port, process, tls=True)
    cookie, csrf = login_form(port, tls=True)
    status, headers, _ = request(
        port, "POST", "/login", headers={"Cookie": cookie}, tls=True,
        body={"csrf": csrf, "reviewer": "RV-5001", "token": "token-5001-abcdefghijklmnop"},
    )  # fmt: skip
    assert status == 303
    session = next(c for c in headers.get_all("Set-Cookie") if c.startswith("claims_review_session="))
    assert "Secure" in session


def test_a_tokens_file_others_can_read_is_refused(deployment: Deployment) -> None:
    process, _, stderr = start_workbench(deployment, "--tokens", str(tokens(deployment, 0o644)))
    assert process.wait(timeout=30) == 3
    assert "chmod 600" in stderr.read_text()


def test_error_pages_carry_the_security_headers(deployment: Deployment) -> None:
    process, port, _ = start_workbench(deployment, "--tokens", str(tokens(deployment)))
    wait_up(port, process)
    for method, path, status in (("GET", "/static/no-such.css", 404), ("PUT", "/login", 405)):
        answer, headers, _ = request(port, method, path)
        assert answer == status
        assert headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
