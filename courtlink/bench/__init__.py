"""Benchmarks (``courtlink bench``), the headless participant and its recorder, and the
transcoding baseline the SFU is measured against.

The product never imports this package: the benchmark starts its own server process
(``python -m courtlink.bench.server``), which is where the transcoding baseline is plugged in.
"""
