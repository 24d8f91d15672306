"""`python -m marvel [overrides]`: see `marvel.cli.main`."""

from marvel.cli.main import main

if __name__ == "__main__":
    main()
