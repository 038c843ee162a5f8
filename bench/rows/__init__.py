"""The rows of ``make bench``: each module's ``run(quick, full, earlier)`` returns one row, measured by
its ``VARIANTS`` in processes of their own."""
