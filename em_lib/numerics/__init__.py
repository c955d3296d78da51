"""Numerical core: pure numpy/scipy, no I/O, no global random state."""
