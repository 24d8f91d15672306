"""Throughput of the synthetic generator: rows/second for 100k and 1M rows (best of a few runs), and for a
stream of small windows, each from a new source (what monitoring streams and Spark partitions do), as a ratio
of the per-row cost of one large draw measured in the same run.

uv run python benchmarks/bench_synthetic.py [--sizes 100000 1000000] [--repeat 3] [--windows 50]
"""

from __future__ import annotations

import argparse
import time

from marvel.data.synthetic.source import SyntheticSource


def bench(n_rows: int, repeat: int) -> float:
    """Best wall time of `repeat` calls of generate(n_rows) (pools and tables prepared beforehand)."""
    src = SyntheticSource(n_rows=n_rows, seed=0)
    src.generate(1_000, seed=0)  # warm-up: builds pools and the Alive intercept shift once
    best = float("inf")
    for i in range(repeat):
        t0 = time.perf_counter()
        df = src.generate(n_rows, seed=i)
        best = min(best, time.perf_counter() - t0)
        assert len(df) == n_rows
    return best


def bench_windows(windows: int, rows: int, repeat: int) -> float:
    """Best wall time to draw `windows` windows of `rows` rows, each from a new source with its own seed."""
    best = float("inf")
    for i in range(repeat):
        t0 = time.perf_counter()
        for w in range(windows):
            df = SyntheticSource(n_rows=rows, seed=1000 * i + w).generate(
                rows, seed=1000 * i + w, partition=w
            )
            assert len(df) == rows
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--windows", type=int, default=50, help="windows of 100 rows, each from a new source")
    args = ap.parse_args()
    t0 = time.perf_counter()
    SyntheticSource(seed=0).generate(10, seed=0)
    print(f"first-use preparation (pools, reference draw): {time.perf_counter() - t0:.2f} s")
    per_row = 0.0
    for n in args.sizes:
        secs = bench(n, args.repeat)
        per_row = per_row or secs / n
        print(f"{n:>10,d} rows: {secs:6.2f} s  ->  {n / secs:>12,.0f} rows/s")
    secs = bench_windows(args.windows, 100, args.repeat)
    ratio = secs / (args.windows * 100) / per_row
    print(
        f"{args.windows} windows x 100 rows, a new source each: {secs:6.2f} s -> {ratio:,.0f}x the per-row cost "
        f"of {args.sizes[0]:,d} rows in one draw"
    )


if __name__ == "__main__":
    main()
