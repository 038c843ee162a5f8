"""What every row and study uses: inputs, fakes, timing, running a variant in its own process, prices."""
