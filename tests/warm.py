"""What every pytest worker and every process forked warm (`processes.WARM`) does once, at import.

conftest.py imports it (through processes.py) in pytest's workers, and freezes again once the tests are
collected; the warm forkserver preloads it last, just before it forks the CLI runs that the fault tests kill.
"""

from __future__ import annotations

import gc
import importlib.util
import sys

# pandera asks for geopandas (`import geopandas`, which fails here) each time it maps a dtype, several times
# per column per validation; a failed import is not remembered, and under pytest each attempt also goes through
# the assertion-rewriting import hook (~0.1 ms, ~10 s of CPU over the suite). None in sys.modules makes the
# import fail at once, with the same ImportError; only where geopandas is really absent.
if importlib.util.find_spec("geopandas") is None:
    sys.modules.setdefault("geopandas", None)  # type: ignore[assignment]


# Everything imported so far lives as long as the process: out of the garbage collector's sight, full
# collections stop walking it, and in a forked child they stop writing to (and so copying) each inherited
# object's page. (the crash tests' file, -n0, same hour: 5-10% less CPU)
gc.freeze()
