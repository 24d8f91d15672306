"""The framework: config, errors, table contracts and catalog, stores, compute, tracking, and the engine that
wires a run. Everything else builds on this package; it imports nothing of marvel outside itself."""
