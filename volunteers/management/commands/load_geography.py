"""``listenline load-geography [DIR | BRANCHES.csv MUNICIPALITIES.csv]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from volunteers.geography import GeographyError, default_data_dir, geography_load


class Command(BaseCommand):
    help = (
        "Load branches and municipalities from branches.csv and municipalities.csv "
        "(a folder holding both, or the two files). Idempotent; a bad file writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="a folder, or BRANCHES.csv MUNICIPALITIES.csv")

    def handle(self, *args: Any, paths: list[str], **options: Any) -> None:
        if not paths:
            folder = default_data_dir()
            branches, municipalities = folder / "branches.csv", folder / "municipalities.csv"
        elif len(paths) == 1 and Path(paths[0]).is_dir():
            branches = Path(paths[0]) / "branches.csv"
            municipalities = Path(paths[0]) / "municipalities.csv"
        elif len(paths) == 2:
            branches, municipalities = Path(paths[0]), Path(paths[1])
        else:
            raise CommandError("give a folder, or the branches and the municipalities CSV file")
        try:
            report = geography_load(branches_path=branches, municipalities_path=municipalities)
        except GeographyError as exc:
            raise CommandError(f"refused, nothing written: {exc}") from exc
        self.stdout.write(report.summary())
