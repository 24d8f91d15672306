"""The Kaggle CSV (``data=kaggle``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from marvel.core.errors import MarvelError
from marvel.core.schemas import RAW_COLUMNS
from marvel.core.sources import REAL, DataSource, Lineage, conform

HOW_TO_GET = (
    "download it from Kaggle (mohitbansal31s/marvel-characters) as data/README.md explains, or set data.path"
)


class KaggleSource(DataSource):
    """Reads every cell as text, so nothing is reinterpreted before validation sees it."""

    def __init__(self, path: str) -> None:
        self.given = str(path or "").strip()
        self.path = Path(self.given).expanduser()
        self.description = f"kaggle csv {self.path}"

    def fingerprint(self) -> str:
        stat = self.path.stat() if self.path.is_file() else None
        return f"{stat.st_size}:{stat.st_mtime_ns}" if stat else "missing"

    def check(self) -> None:
        """The file exists, is readable, and its header has the Kaggle columns (only the header is read)."""
        if not self.given:
            raise MarvelError(
                "data.path is empty: give the Kaggle CSV's path (in a Databricks job, set the bundle variable "
                "raw_data to its Unity Catalog Volume path)"
            )
        if not self.path.is_file():
            raise MarvelError(f"data file not found: {self.path}; {HOW_TO_GET}")
        try:
            header = pd.read_csv(self.path, dtype=str, nrows=0)
        except pd.errors.EmptyDataError:
            raise MarvelError(f"data file is empty: {self.path}; {HOW_TO_GET}") from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise MarvelError(
                f"cannot read {self.path} as CSV ({str(exc).splitlines()[0]}); {HOW_TO_GET}"
            ) from None
        missing = [c for c in RAW_COLUMNS if c not in header.columns]
        if missing:
            raise MarvelError(
                f"{self.path} lacks the Kaggle column(s) {missing}; is it the Marvel Characters file? {HOW_TO_GET}"
            )

    def lineage(self) -> Lineage:
        """One lineage per file name; a new export of the file is a new version of it (its checksum)."""
        sha = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return Lineage(REAL, "kaggle", f"kaggle:{self.path.name}", f"sha256:{sha.hexdigest()[:16]}")

    def load(self) -> pd.DataFrame:
        self.check()
        try:
            df = pd.read_csv(self.path, dtype=str, keep_default_na=True)
        except pd.errors.EmptyDataError:
            raise MarvelError(f"data file is empty: {self.path}; {HOW_TO_GET}") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise MarvelError(
                f"cannot parse {self.path} as CSV ({str(exc).splitlines()[0]}); {HOW_TO_GET}"
            ) from None
        missing = [c for c in RAW_COLUMNS if c not in df.columns]
        if missing:
            raise MarvelError(
                f"{self.path} lacks the Kaggle column(s) {missing}; is it the Marvel Characters file? {HOW_TO_GET}"
            )
        if df.empty:
            raise MarvelError(f"data file has a header but no rows: {self.path}; {HOW_TO_GET}")
        return conform(df)
