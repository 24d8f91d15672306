"""An existing table in the table store (``data=table``), e.g. a raw table another job wrote."""

from __future__ import annotations

import pandas as pd
from hydra.utils import instantiate

from marvel.core.errors import MarvelError
from marvel.core.sources import REAL, DataSource, Lineage, conform


class TableSource(DataSource):
    def __init__(self, store: dict, name: str, version: int | None = None) -> None:
        self.store = instantiate(store)
        self.name = name
        self.version = version
        self.description = f"table {name}" + (f"@v{version}" if version is not None else "")

    def check(self) -> None:
        if not self.store.exists(self.name):
            raise MarvelError(
                f"data table '{self.name}' does not exist at {self.store.uri(self.name)}; "
                "write it first or set data.name"
            )

    def lineage(self) -> Lineage:
        """One lineage per table; each table version is a version of it."""
        version = self.version if self.version is not None else self.store.version(self.name)
        return Lineage(REAL, "table", f"table:{self.name}", f"v{version}")

    def load(self) -> pd.DataFrame:
        return conform(self.store.read(self.name, self.version))
