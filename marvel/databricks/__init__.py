"""Databricks: model serving endpoints, Lakehouse monitors and job task values, through databricks-sdk."""
