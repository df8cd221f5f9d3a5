"""Loading the line's geography (branches and municipalities) from the two CSV files.

The whole file pair is checked before anything is written; a bad file is refused with
the row and the reason, and the database is left as it was. Loading the same files twice
changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from django.db import transaction

from volunteers.models import Branch, Municipality

BRANCH_COLUMNS = ("slug", "name", "seat_municipality_code", "population", "neighbours")
MUNICIPALITY_COLUMNS = (
    "code",
    "name",
    "population",
    "safety_region_code",
    "safety_region_name",
    "demo_branch",
    "neighbours",
)


class GeographyError(ValueError):
    """A geography file is refused; ``str()`` names the file, the row and the reason."""


@dataclass
class GeographyReport:
    created: dict[str, int] = field(default_factory=lambda: {"branches": 0, "municipalities": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"branches": 0, "municipalities": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"branches": 0, "municipalities": 0})
    neighbour_links_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            sum(self.created.values()) + sum(self.updated.values()) + self.neighbour_links_changed
        )

    def summary(self) -> str:
        parts = []
        for kind in ("branches", "municipalities"):
            parts.append(
                f"{kind}: {self.created[kind]} created, {self.updated[kind]} updated, "
                f"{self.unchanged[kind]} unchanged"
            )
        parts.append(f"neighbour links changed: {self.neighbour_links_changed}")
        return "; ".join(parts)


def default_data_dir() -> Path:
    return Path(str(resources.files("listenline") / "data"))


def _read(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise GeographyError(f"{path.name}: missing column(s) {', '.join(missing)}")
            return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as exc:
        raise GeographyError(f"{path}: cannot read ({exc.strerror})") from exc


def _positive_int(value: str, where: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise GeographyError(f"{where}: population {value!r} is not a whole number") from None
    if number < 0:
        raise GeographyError(f"{where}: population {number} is negative")
    return number


def _validate(
    branches: list[dict[str, str]], municipalities: list[dict[str, str]], names: tuple[str, str]
) -> None:
    bname, mname = names
    slugs: set[str] = set()
    for line, row in enumerate(branches, start=2):
        where = f"{bname} row {line}"
        if not row["slug"] or not row["name"]:
            raise GeographyError(f"{where}: slug and name are required")
        if row["slug"] in slugs:
            raise GeographyError(f"{where}: duplicate branch slug {row['slug']!r}")
        slugs.add(row["slug"])
        _positive_int(row["population"], where)
    codes: set[str] = set()
    for line, row in enumerate(municipalities, start=2):
        where = f"{mname} row {line}"
        if not row["code"] or not row["name"]:
            raise GeographyError(f"{where}: code and name are required")
        if row["code"] in codes:
            raise GeographyError(f"{where}: duplicate municipality code {row['code']!r}")
        codes.add(row["code"])
        if row["demo_branch"] not in slugs:
            raise GeographyError(f"{where}: unknown branch {row['demo_branch']!r}")
        _positive_int(row["population"], where)
    for line, row in enumerate(branches, start=2):
        for neighbour in row["neighbours"].split():
            if neighbour not in slugs or neighbour == row["slug"]:
                raise GeographyError(f"{bname} row {line}: unknown neighbour {neighbour!r}")
        if row["seat_municipality_code"] not in codes:
            raise GeographyError(
                f"{bname} row {line}: unknown seat municipality {row['seat_municipality_code']!r}"
            )
    for line, row in enumerate(municipalities, start=2):
        for neighbour in row["neighbours"].split():
            if neighbour not in codes or neighbour == row["code"]:
                raise GeographyError(f"{mname} row {line}: unknown neighbour {neighbour!r}")


def _sync_neighbours(model: type, key: str, rows: list[dict[str, str]]) -> int:
    """Make the symmetric neighbour relation exactly the union of the listed pairs."""
    ids = dict(model.objects.values_list(key, "pk"))  # type: ignore[attr-defined]
    wanted: set[tuple[int, int]] = set()
    for row in rows:
        for other in row["neighbours"].split():
            a, b = ids[row[key]], ids[other]
            wanted.add((a, b))
            wanted.add((b, a))
    through = model.neighbours.through  # type: ignore[attr-defined]
    src, dst = f"from_{model.__name__.lower()}_id", f"to_{model.__name__.lower()}_id"
    existing = set(through.objects.values_list(src, dst))
    stale = existing - wanted
    fresh = wanted - existing
    for a, b in stale:
        through.objects.filter(**{src: a, dst: b}).delete()
    through.objects.bulk_create([through(**{src: a, dst: b}) for a, b in fresh])
    return (len(stale) + len(fresh)) // 2


def geography_load(
    *, branches_path: Path | None = None, municipalities_path: Path | None = None
) -> GeographyReport:
    """Load or update branches and municipalities; all or nothing."""
    data = default_data_dir()
    branches_path = branches_path or data / "branches.csv"
    municipalities_path = municipalities_path or data / "municipalities.csv"
    branches = _read(branches_path, BRANCH_COLUMNS)
    municipalities = _read(municipalities_path, MUNICIPALITY_COLUMNS)
    _validate(branches, municipalities, (branches_path.name, municipalities_path.name))

    report = GeographyReport()
    with transaction.atomic():
        current_b = {b.slug: b for b in Branch.objects.all()}
        for row in branches:
            values = {
                "name": row["name"],
                "seat_municipality_code": row["seat_municipality_code"],
                "population": int(row["population"]),
            }
            _upsert(
                Branch,
                current_b.get(row["slug"]),
                {"slug": row["slug"]},
                values,
                report,
                "branches",
            )
        branch_ids = dict(Branch.objects.values_list("slug", "pk"))
        current_m = {m.code: m for m in Municipality.objects.all()}
        for row in municipalities:
            values = {
                "name": row["name"],
                "population": int(row["population"]),
                "safety_region_code": row["safety_region_code"],
                "safety_region_name": row["safety_region_name"],
                "branch_id": branch_ids[row["demo_branch"]],
            }
            _upsert(
                Municipality,
                current_m.get(row["code"]),
                {"code": row["code"]},
                values,
                report,
                "municipalities",
            )
        report.neighbour_links_changed += _sync_neighbours(Branch, "slug", branches)
        report.neighbour_links_changed += _sync_neighbours(Municipality, "code", municipalities)
    return report


def _upsert(model, current, key, values, report: GeographyReport, kind: str) -> None:  # type: ignore[no-untyped-def]
    if current is None:
        model.objects.create(**key, **values)
        report.created[kind] += 1
        return
    changed = {k: v for k, v in values.items() if getattr(current, k) != v}
    if changed:
        model.objects.filter(pk=current.pk).update(**changed)
        report.updated[kind] += 1
    else:
        report.unchanged[kind] += 1
