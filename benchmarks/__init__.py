"""Speed benchmarks of iwb against baselines measured in the same run.

Run them with the wrappers in `scripts/` (`scripts/bench`, `scripts/bench-reload`,
`scripts/bench-http`, `scripts/bench-startup`) or as modules from the repository root
(`python -m benchmarks.reload`). Each prints human-readable lines on stderr and one JSON
line on stdout, and exits 1 when iwb misses a target. `apps/` holds the projects and
applications that are measured.
"""
