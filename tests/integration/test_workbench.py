"""The reviewer's workbench in a real browser (Debian's chromium through chromedriver), on the real broker.

A claim pends for clinical review; it appears in the queue; the reviewer denies it with CARC 50;
the final adjudication appears on the adjudicated topic and the claim leaves the queue.
Screenshots of the queue and the claim page are written to `WORKBENCH_SCREENSHOTS` when set
(the README's come from there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import claim_event, ketamine_line, service_line, to_bytes
from tests.integration.conftest import CLI, Deployment, decode, free_port, wait_for

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="no chromium and chromedriver (`make test` installs them)"
)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def serve_workbench(deployment: Deployment, tokens: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = deployment.env(free_port())
    command = [CLI, "review", "serve", "--port", str(port), "--db", str(deployment.tmp / "review.sqlite3")]
    with (deployment.tmp / "workbench.stderr").open("ab") as stderr:  # the child keeps its own copy
        process = subprocess.Popen(
            [*command, "--tokens", str(tokens)], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    deployment.processes.append(process)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:  # noqa: S310 - our own loopback server
                return bool(answer.status == 200)
        except OSError:
            return False

    wait_for(up, 30, "the workbench")
    return process, base


def tokens_file(deployment: Deployment, *lines: str) -> Path:
    """A tokens file as an operator writes it: readable by its owner only."""
    tokens = deployment.tmp / "tokens"
    tokens.write_text("".join(f"{line}\n" for line in lines))
    tokens.chmod(0o600)
    return tokens


def sign_in(driver: object, reviewer: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "reviewer").send_keys(reviewer)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys(token)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "sign-in").click()  # type: ignore[attr-defined]
    wait_for(lambda: "Signed in as" in driver.page_source, 30, "the signed-in page")  # type: ignore[attr-defined]


def shoot(driver: object, name: str, tmp: Path) -> None:
    target = Path(os.environ["WORKBENCH_SCREENSHOTS"]) if os.environ.get("WORKBENCH_SCREENSHOTS") else tmp
    target.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(target / name))  # type: ignore[attr-defined]


def test_a_reviewer_denies_a_pended_claim_in_the_browser(deployment: Deployment, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    claim = claim_event(
        claim_id="WB-CLAIM-1", member_id="M-WB-1", diagnoses=["R52"], lines=[ketamine_line(1), service_line(2, "96365")]
    )
    deployment.produce([to_bytes(claim)], [b"WB-CLAIM-1"])
    deployment.start_worker()
    (pend,) = [o for o in decode(deployment.consume(1)) if o["event_type"] == "claim.pended"]
    assert pend["queue"] == "clinical_review"

    _, base = serve_workbench(
        deployment, tokens_file(deployment, "RV-2001 local-token-0123456789abcdef clinical_reviewer")
    )

    driver.get(f"{base}/pends/{pend['event_id']}")  # type: ignore[attr-defined]
    assert "/login" in driver.current_url  # type: ignore[attr-defined]  # no anonymous access
    sign_in(driver, "RV-2001", "local-token-0123456789abcdef")

    def in_queue() -> bool:
        driver.get(f"{base}/")  # type: ignore[attr-defined]
        return "WB-CLAIM-1" in driver.page_source  # type: ignore[attr-defined]

    wait_for(in_queue, 60, "the pended claim in the queue")
    assert "clinical_review (1)" in driver.page_source  # type: ignore[attr-defined]
    assert "Signed in as RV-2001" in driver.page_source  # type: ignore[attr-defined]
    shoot(driver, "workbench-queue.png", deployment.tmp)

    driver.find_element(By.LINK_TEXT, "WB-CLAIM-1").click()  # type: ignore[attr-defined]
    wait_for(lambda: "Send review" in driver.page_source, 30, "the claim page")  # type: ignore[attr-defined]
    page = driver.page_source  # type: ignore[attr-defined]
    assert "criteria.indication_unclear" in page
    assert "The line's diagnoses do not show" in page  # the decision in plain words
    for phi in ("Pat", "Example", "1980-04-02", "hydrochloride"):
        assert phi not in page
    shoot(driver, "workbench-claim.png", deployment.tmp)

    driver.find_element(By.ID, "deny-1").click()  # type: ignore[attr-defined]
    Select(driver.find_element(By.ID, "carc-1")).select_by_value("50")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "send").click()  # type: ignore[attr-defined]
    wait_for(lambda: "Review sent" in driver.page_source, 30, "the page after sending")  # type: ignore[attr-defined]

    def told_applied() -> bool:
        driver.refresh()  # type: ignore[attr-defined]
        return "Review applied" in driver.page_source  # type: ignore[attr-defined]

    wait_for(told_applied, 60, "the page to say the review was applied")

    def final() -> dict[str, object] | None:
        for output in decode(deployment.consume(2, timeout=3)):
            if output.get("review_event_id"):
                return output
        return None

    wait_for(lambda: final() is not None, 60, "the final adjudication")
    done = final()
    assert done is not None
    assert (done["event_type"], done["supersedes_event_id"]) == ("claim.adjudicated", pend["event_id"])
    line = done["lines"][0]  # type: ignore[index]
    assert (line["rule"], line["carc"]) == ("review.denied", ["50"])
    reviewed = [hit for hit in done["trace"] if hit["rule"] == "review.denied"]  # type: ignore[attr-defined]
    assert "reviewer RV-2001" in reviewed[0]["evidence"]

    def left_queue() -> bool:
        driver.get(f"{base}/")  # type: ignore[attr-defined]
        return "WB-CLAIM-1" not in driver.page_source  # type: ignore[attr-defined]

    wait_for(left_queue, 60, "the claim to leave the queue")


def test_a_queue_closed_by_correction_offers_only_deny_and_a_lost_race_is_told(
    deployment: Deployment, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    # An invalid NPI: pended data_correction, which no reviewer may approve as it stands.
    bad_npi = claim_event(
        claim_id="WB-NPI-1", member_id="M-WB-2", provider={"npi": "1234567890", "participating": True}
    )
    deployment.produce([to_bytes(bad_npi)], [b"WB-NPI-1"])
    deployment.start_worker()
    (pend,) = [o for o in decode(deployment.consume(1)) if o["event_type"] == "claim.pended"]
    assert pend["queue"] == "data_correction"

    tokens = tokens_file(
        deployment,
        "RV-3001 local-token-3001-abcdefghij claims_examiner",
        "RV-3002 local-token-3002-abcdefghij clinical_reviewer",
    )
    _, base = serve_workbench(deployment, tokens)
    driver.get(f"{base}/login")  # type: ignore[attr-defined]
    sign_in(driver, "RV-3001", "local-token-3001-abcdefghij")

    def claim_page() -> bool:
        driver.get(f"{base}/pends/{pend['event_id']}")  # type: ignore[attr-defined]
        return "Send review" in driver.page_source  # type: ignore[attr-defined]

    wait_for(claim_page, 60, "the claim page with its form")
    assert driver.find_elements(By.ID, "approve-1") == []  # type: ignore[attr-defined]  # no approve offered
    assert driver.find_element(By.ID, "deny-only-1").is_displayed()  # type: ignore[attr-defined]
    shoot(driver, "workbench-deny-only.png", deployment.tmp)

    # Another examiner's review is applied first (signed and sent by `review publish`).
    other = {
        "schema_version": 1,
        "event_id": "6f1c0a52-3b7e-4f6a-9d1e-2c4b8a7e5f10",
        "pend_event_id": pend["event_id"],
        "claim_id": pend["claim_id"],
        "member_id": pend["member_id"],
        "reviewer_id": "RV-OTHER",
        "reviewer_roles": ["claims_examiner"],
        "decided_at": pend["decided_at"],
        "lines": [{"line_number": 1, "outcome": "denied", "carc": ["16"], "rarc": ["N290"]}],
    }
    review_file = deployment.tmp / "other-review.json"
    review_file.write_text(json.dumps(other))
    done = subprocess.run(
        [CLI, "review", "publish", str(review_file)], env=deployment.env(free_port()), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr

    # The reviewer, on the page loaded before, denies too: the worker refuses it, and the page says so.
    driver.find_element(By.ID, "deny-1").click()  # type: ignore[attr-defined]
    Select(driver.find_element(By.ID, "carc-1")).select_by_value("16")  # type: ignore[attr-defined]
    Select(driver.find_element(By.ID, "rarc-1")).select_by_value("N290")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "send").click()  # type: ignore[attr-defined]

    def told_refused() -> bool:
        page = driver.page_source  # type: ignore[attr-defined]
        if "refused" in page.lower() or "not open any more" in page:
            return "resolved by RV-OTHER" in page
        driver.refresh()  # type: ignore[attr-defined]
        return False

    wait_for(told_refused, 90, "the page to say the review was refused and who resolved the pend")
    shoot(driver, "workbench-refused.png", deployment.tmp)
