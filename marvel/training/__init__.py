"""Training: the model pipeline, metrics plots, cross-validated selection, sweeps, registration and promotion."""
