"""``python -m lsfix``."""

from lsfix.cli import main

if __name__ == "__main__":
    main()
