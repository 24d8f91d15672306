"""An existing table in the table store (``data=table``), e.g. a raw table another job wrote."""

from __future__ import annotations

import pandas as pd
from hydra.utils import instantiate

from marvel.core.sources import DataSource, conform


class TableSource(DataSource):
    def __init__(self, store: dict, name: str, version: int | None = None) -> None:
        self.store = instantiate(store)
        self.name = name
        self.version = version
        self.description = f"table {name}" + (f"@v{version}" if version is not None else "")

    def load(self) -> pd.DataFrame:
        return conform(self.store.read(self.name, self.version))
