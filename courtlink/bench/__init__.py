"""Benchmarks (``courtlink bench``), the headless participant and its recorder, and the
transcoding baseline the SFU is measured against. Not imported by the server."""
