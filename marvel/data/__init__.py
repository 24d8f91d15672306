"""Data sources: every source returns rows in the raw Kaggle columns (see `marvel.schemas.RAW_COLUMNS`)."""
