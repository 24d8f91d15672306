"""Feature processors: scikit-learn transformers that take character records and live in the model pipeline."""
