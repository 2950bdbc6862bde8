"""Benchmarks: `python -m bench.<name>` prints one table and writes bench/results/<name>.md.

Benchmarks measure and report; they do not pass or fail (the tests do that).
"""
