"""Querying the lake exactly: Athena (engine 3) DDL and DuckDB views over raw/, compacted/ and snapshot/.

Development and operations tooling, not part of the Lambda layer: ``python -m analytics athena``
prints the Athena DDL for a bucket, ``analytics.duck.connect(lake_dir)`` opens a local or downloaded
lake in DuckDB with the views ``changes``, ``history``, ``latest`` and ``snapshot``.

Exactness is the point: every view passes each record's JSON text through verbatim (``record``), so
a 38-digit number or a 40-digit sequence number reaches the answer digit for digit; see
docs/querying.md for which reader keeps which numbers exact, and how.
"""
