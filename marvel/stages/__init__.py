"""Stages: one module per stage, each a `run(ctx) -> StageResult` that composes parts.

`stages=[...]` in the config picks which run, in order; `stage_runners` in conf/config.yaml maps each name
to its function, so a stage is imported only when a run uses it (`stages=[deploy]` pays no training imports).
"""
