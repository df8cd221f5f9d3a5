from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from volunteers.geography import GeographyError, default_data_dir, geography_load
from volunteers.models import Branch, Municipality

pytestmark = pytest.mark.django_db


def test_loads_30_branches_and_342_municipalities() -> None:
    report = geography_load()
    assert Branch.objects.count() == 30
    assert Municipality.objects.count() == 342
    assert report.created == {"branches": 30, "municipalities": 342}
    utrecht = Branch.objects.get(slug="utrecht")
    assert "eemland" in set(utrecht.neighbours.values_list("slug", flat=True))
    assert Municipality.objects.get(code="GM0344").branch == utrecht


def test_neighbours_are_symmetric() -> None:
    geography_load()
    for branch in Branch.objects.prefetch_related("neighbours"):
        for other in branch.neighbours.all():
            assert branch in other.neighbours.all(), (branch.slug, other.slug)
    wadden = Municipality.objects.get(code="GM0093")  # Terschelling: an island
    assert wadden.neighbours.count() == 0


def test_loading_twice_changes_nothing() -> None:
    geography_load()
    again = geography_load()
    assert not again.changed
    assert again.unchanged == {"branches": 30, "municipalities": 342}


def _copy_data(tmp_path: Path) -> tuple[Path, Path]:
    for name in ("branches.csv", "municipalities.csv"):
        shutil.copy(default_data_dir() / name, tmp_path / name)
    return tmp_path / "branches.csv", tmp_path / "municipalities.csv"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("which", "old", "new", "reason"),
    [
        ("b", "slug,name,", "slag,name,", "missing column(s) slug"),
        (
            "b",
            "apeldoorn-veluwe gelderland-midden twente",
            "atlantis",
            "unknown neighbour 'atlantis'",
        ),
        ("m", "GM0034,Almere", "GM0014,Almere", "duplicate municipality code 'GM0014'"),
        ("m", ",217828,", ",lots,", "population 'lots' is not a whole number"),
        (
            "m",
            "GM0014,Groningen,234950,VR01,Groningen,groningen",
            "GM0014,Groningen,234950,VR01,Groningen,mars",
            "unknown branch 'mars'",
        ),
    ],
)
def test_a_broken_file_is_refused_with_row_and_reason_and_writes_nothing(
    tmp_path: Path, which: str, old: str, new: str, reason: str
) -> None:
    branches, municipalities = _copy_data(tmp_path)
    _edit(branches if which == "b" else municipalities, old, new)
    with pytest.raises(GeographyError) as refused:
        geography_load(branches_path=branches, municipalities_path=municipalities)
    assert reason in str(refused.value)
    assert Branch.objects.count() == 0
    assert Municipality.objects.count() == 0


def test_a_broken_update_leaves_the_loaded_geography_as_it_was(tmp_path: Path) -> None:
    geography_load()
    branches, municipalities = _copy_data(tmp_path)
    _edit(branches, "Achterhoek,GM0222", "Achterhoek Renamed,GM0222")
    _edit(municipalities, "GM0034,Almere", "GM0014,Almere")
    with pytest.raises(GeographyError, match=r"municipalities.csv row \d+"):
        geography_load(branches_path=branches, municipalities_path=municipalities)
    assert Branch.objects.get(slug="achterhoek").name == "Achterhoek"


def test_command_reports_changes_and_refuses_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("load_geography")
    assert "branches: 30 created" in capsys.readouterr().out
    call_command("load_geography", str(default_data_dir()))
    assert "30 unchanged" in capsys.readouterr().out
    branches, municipalities = _copy_data(tmp_path)
    _edit(branches, "slug,name,", "slag,name,")
    with pytest.raises(CommandError, match="refused, nothing written"):
        call_command("load_geography", str(branches), str(municipalities))
