"""Benchmarks of Reciprocity (`make bench`, `python -m bench --help`)."""
