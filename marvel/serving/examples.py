"""Example character records: the source platform's serving request, and a record with raw Kaggle values.

Used by the README, the client's docs, tests and benchmarks, so they all speak of the same characters.
"""

from __future__ import annotations

# The source platform's serving example, verbatim (its Teams/Magic/Mutant are pre-digested flags).
SOURCE_EXAMPLE: dict = {
    "Height": 1.88,
    "Weight": 90.0,
    "Universe": "Marvel",
    "Identity": "Secret",
    "Gender": "Male",
    "Marital_Status": "Single",
    "Teams": "1",
    "Origin": "Human",
    "Magic": "0",
    "Mutant": "0",
}

# A record as the Kaggle file has it: a universe id, a "; "-list of teams, free-text origin.
RAW_EXAMPLE: dict = {
    "Id": "Peter_Parker_(Earth-616)",
    "Height": 1.78,
    "Weight": 76.0,
    "Universe": "Earth-616",
    "Identity": "Secret",
    "Gender": "Male",
    "Marital_Status": "Married",
    "Teams": "Avengers; X-Men",
    "Origin": "Human mutate",
}
