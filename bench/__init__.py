"""Cashew's benchmark: `python -m bench.run` (make bench). See bench/run.py."""
