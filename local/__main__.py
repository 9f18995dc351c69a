"""`python -m local`: the same as `python -m local.dev`."""

from local.dev import main

if __name__ == "__main__":
    raise SystemExit(main())
