"""Data sources: every source returns rows in the raw Kaggle columns (see `marvel.core.schemas.RAW_COLUMNS`)."""
