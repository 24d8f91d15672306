"""Seeded synthetic Marvel characters, calibrated on the real Kaggle sample (`source.SyntheticSource`).

source.py         SyntheticSource: rows in the raw contract, by (seed, partition), with drift and dirt
distributions.py  categorical columns with Zipf tails, list columns, quantile curves
pools.py          generated tail values from the word pools in words.yaml
alive.py          features of the Alive model the calibration fitted
"""
