"""Monitoring: the inference table -> a monitoring table -> profile and drift metrics per window, alerts, a report.

Modules are small and pure where they can be (parse, windows, stats, profile, drift, quality, alerts); only
`monitor.LocalMonitor` touches tables, so a Databricks monitor can reuse the pure parts (`parse`).
"""
