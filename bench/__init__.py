"""The benchmark suite: changelake side by side with the alternatives (``make bench``).

Every measurement ("variant") runs in its own Python subprocess, so its peak RSS
(``ru_maxrss``) is its own: interpreter, imports, input and work. Inputs are generated once per
run, deterministically (seeded), and cached under ``bench/results/cache/`` so that every variant
of a row reads the very same bytes. Times are the best of several repeats (the machine is shared,
so the minimum is the least noisy estimate) and only ratios between variants of one run count.
"""
