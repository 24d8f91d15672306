"""The Spark backend: a table store (Unity Catalog on Databricks, a local warehouse folder here) and a compute
that runs the pandas code of marvel per partition (``mapInPandas``), so there is one implementation of
validation and features, not two. Selected with ``+env=spark`` (local) or ``+env=dev|acc|prd`` (Databricks)."""
