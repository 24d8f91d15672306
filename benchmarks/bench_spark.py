"""Processing throughput: the fitted feature processor on pandas (one process) vs local Spark (mapInPandas).

    uv run python benchmarks/bench_spark.py                 # 100k and 1M rows, both engines
    uv run python benchmarks/bench_spark.py --big           # adds 10M rows, Spark only
    uv run python benchmarks/bench_spark.py --sizes 50000 200000 --cores 2

The processor (features=marvel) is fitted once on 20k rows. Input rows are synthetic raw rows written to
parquet first, so generation is not timed; Spark reads that parquet and writes to the `noop` sink (all work
done, nothing stored), pandas transforms the frame already in memory. 10M rows in pandas would need ~10 GB
and a chunked loop that is just the 1M number repeated, so it is Spark only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marvel.core.quarantine import to_split_rows
from marvel.data.synthetic.source import SyntheticSource
from marvel.features.marvel import MarvelProcessor

CHUNK = 1_000_000  # rows generated per partition (and per pandas chunk)


def fitted_processor() -> MarvelProcessor:
    rows = to_split_rows(SyntheticSource(n_rows=20_000, seed=1).load())
    return MarvelProcessor(random_state=0).fit(rows.drop(columns="Alive"), rows["Alive"])


def write_input(spark: object, source: SyntheticSource, n: int, path: Path) -> None:
    from marvel.spark.compute import SparkCompute

    compute = SparkCompute({}, rows_per_partition=min(CHUNK, max(50_000, n // 8)))
    compute.generate(source, n, source.seed).write.mode("overwrite").parquet(str(path))


def bench_pandas(processor: MarvelProcessor, path: Path) -> float:
    df = pd.read_parquet(path)
    t0 = time.perf_counter()
    processor.transform(df)
    return time.perf_counter() - t0


def bench_spark(spark: object, processor: MarvelProcessor, path: Path) -> float:
    from marvel.spark.compute import SparkCompute

    frame = spark.read.parquet(str(path))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    SparkCompute({}).transform(processor, frame).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--big", action="store_true", help="also 10M rows (Spark only)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    from marvel.spark.session import get_spark

    spark = get_spark(
        {
            "remote": f"local[{args.cores}]",  # Spark Connect, as serverless and databricks-connect
            "conf": {
                "spark.sql.execution.arrow.pyspark.enabled": True,
                "spark.ui.enabled": False,
                "spark.ui.showConsoleProgress": False,
                "spark.driver.memory": "6g",
                "spark.sql.session.timeZone": "UTC",
            },
        }
    )
    processor = fitted_processor()
    source = SyntheticSource(n_rows=1, seed=5)
    sizes = [*args.sizes, *([10_000_000] if args.big else [])]
    work = Path(tempfile.mkdtemp(prefix="bench_spark_"))
    # warm the Python workers once (imports of pandas/sklearn/marvel), as a long-running cluster would be
    write_input(spark, source, 20_000, work / "warm")
    bench_spark(spark, processor, work / "warm")
    print(
        f"{'rows':>10} {'pandas s':>9} {'pandas rows/s':>14} {'spark s':>9} {'spark rows/s':>13}  (local[{args.cores}], {os.cpu_count()} CPUs)"
    )
    results = []
    try:
        for n in sizes:
            path = work / f"rows_{n}"
            write_input(spark, source, n, path)
            tp = bench_pandas(processor, path) if n <= 2_000_000 else float("nan")
            ts = bench_spark(spark, processor, path)
            results.append((n, tp, ts))
            pandas_col = f"{tp:>9.2f} {n / tp:>14,.0f}" if tp == tp else f"{'skipped':>9} {'-':>14}"
            print(f"{n:>10,} {pandas_col} {ts:>9.2f} {n / ts:>13,.0f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    both = [(n, tp, ts) for n, tp, ts in results if tp == tp]
    faster = [n for n, tp, ts in both if ts < tp]
    if faster:
        print(f"crossover: Spark is faster from about {min(faster):,} rows on this machine")
    else:
        print("crossover: pandas was faster at every size measured here")


if __name__ == "__main__":
    main()
