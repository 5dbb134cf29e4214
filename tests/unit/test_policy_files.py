"""A malformed policy fails at load with the file, the field path and the reason."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from worker.adjudication import PolicyBook, PolicyError
from worker.policy_files import bundled_policy_dir, load_policy_book

POLICY_FILE = "MB2300/2025.08.21.yaml"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A writable copy of the bundled policy directory."""
    target = tmp_path / "policies"
    shutil.copytree(bundled_policy_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit(policy_dir: Path, old: str, new: str) -> None:
    path = policy_dir / POLICY_FILE
    text = path.read_text()
    assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1))


class TestLoading:
    def test_the_bundled_policy_loads(self) -> None:
        book = load_policy_book()
        assert [p.version for p in book.versions] == ["2025.08.21"]
        assert book.versions[0].effective_from == date(2025, 8, 21)

    def test_a_copy_of_the_bundled_directory_loads_the_same_rules(self, policy_dir: Path) -> None:
        assert load_policy_book(policy_dir).versions[0].rules == load_policy_book().versions[0].rules


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        ("set: bundled_rate", "set: bundled_rates", "", "names 'bundled_rates', which is not defined"),
        (
            'codes: {carc: ["109"], rarc: [N418]}',
            'codes: {carc: ["109"], rarc: [N999]}',
            "codes",
            "RARC ['N999'] not in code table",
        ),
        ('codes: {carc: ["96"], rarc: [N356]}', 'codes: {carc: ["96"], rarc: []}', "codes", "needs at least one RARC"),
        (
            "    coverage: {covered: not-covered}\n",
            "    coverage: {covered: not-covered, pa_needed: no-auth}\n",
            "coverage",
            "CRD",
        ),
        (
            "  - id: criteria.indication_unclear\n    when: []",
            "  - id: criteria.indication_unclear\n    when: [{kind: medicare_primary}]",
            "",
            "must have no conditions",
        ),
        ("  - id: lob.medicare_replacement", "  - id: lob.medicare_advantage", "", "appear more than once"),
        ("kind: frequency_in", "kind: frequency_is", "rules.0.when.0", "does not match any of the expected tags"),
        (
            "    codes: [R45, T14.91, Z91.51, O99.34]",
            "    codes: [R45, T14.91, Z91.51, O99.349X]",
            "diagnosis_families.mental_health.codes",
            "not in any shipped ICD-10-CM release: O99.349X",
        ),
        ('sections: ["2.2"]\n    also_cite', 'sections: ["9.9"]\n    also_cite', "", "section '9.9'"),
        ("    queue: clinical_review\n", "", "rules", "a pended rule needs a queue"),
        ("policy_id: MB2300", "policy_id: MB2300\nunexpected: 1", "unexpected", "Extra inputs are not permitted"),
    ],
    ids=[
        "unknown-set",
        "unknown-rarc",
        "carc-needs-rarc",
        "crd-invariant",
        "no-catch-all",
        "duplicate-rule",
        "unknown-condition",
        "unknown-icd-code",
        "unknown-section",
        "pended-without-queue",
        "unknown-field",
    ],
)
def test_a_malformed_policy_is_refused_with_file_path_and_reason(
    policy_dir: Path, old: str, new: str, path: str, reason: str
) -> None:
    edit(policy_dir, old, new)
    with pytest.raises(PolicyError) as caught:
        load_policy_book(policy_dir)
    error = caught.value
    assert error.source.endswith(POLICY_FILE)
    assert path in error.path
    assert reason in error.reason
    assert str(error).startswith(str(policy_dir / POLICY_FILE))


def test_invalid_yaml_is_refused(policy_dir: Path) -> None:
    (policy_dir / POLICY_FILE).write_text("rules: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy_book(policy_dir)


def test_a_file_named_for_another_version_is_refused(policy_dir: Path) -> None:
    (policy_dir / POLICY_FILE).rename(policy_dir / "MB2300" / "2024.01.01.yaml")
    with pytest.raises(PolicyError, match="file name must be"):
        load_policy_book(policy_dir)


def test_a_missing_policy_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_book(tmp_path)


class TestPolicyBook:
    def test_a_version_is_chosen_by_date_of_service(self, policy_dir: Path) -> None:
        current = load_policy_book(policy_dir).versions[0]
        older = current.model_copy(
            update={"version": "2023.02.15", "effective_from": date(2023, 2, 15), "effective_to": date(2025, 8, 20)}
        )
        book = PolicyBook([current, older])
        assert book.for_date(date(2024, 1, 1)) == (older, True)
        assert book.for_date(date(2025, 8, 21)) == (current, True)
        assert book.for_date(date(2022, 1, 1)) == (older, False)

    def test_overlapping_versions_are_refused(self, policy_dir: Path) -> None:
        current = load_policy_book(policy_dir).versions[0]
        older = current.model_copy(update={"version": "2023.02.15", "effective_from": date(2023, 2, 15)})
        with pytest.raises(ValueError, match="overlap"):
            PolicyBook([current, older])

    def test_two_versions_with_one_name_are_refused(self, policy_dir: Path) -> None:
        current = load_policy_book(policy_dir).versions[0]
        older = current.model_copy(update={"effective_from": date(2023, 2, 15), "effective_to": date(2025, 8, 20)})
        with pytest.raises(ValueError, match="version names repeat"):
            PolicyBook([current, older])

    def test_each_version_decides_with_its_own_rules(self, policy_dir: Path) -> None:
        current = load_policy_book(policy_dir).versions[0]
        older = current.model_copy(
            update={
                "version": "2023.02.15",
                "effective_from": date(2023, 2, 15),
                "effective_to": date(2025, 8, 20),
                "rules": current.rules[-1:],
            }
        )
        book = PolicyBook([current, older])
        assert [r.rule.id for r in book.program(older).rules] == ["criteria.indication_unclear"]
        assert len(book.program(current).rules) == len(current.rules)

    def test_an_unknown_pinned_version_is_refused(self, policy_dir: Path) -> None:
        with pytest.raises(KeyError, match=r"no version '1999\.01\.01'"):
            load_policy_book(policy_dir).version("1999.01.01")
