"""Benchmarks: `make bench` (python -m bench.run) runs every module here that defines main()."""
