"""The snapshot layer: the table itself as of the end of every UTC day, built from its changes.

Modules, one concern each: ``events`` (what SnapshotFunction accepts), ``lines`` (the change and
snapshot line formats), ``merge`` (the pure key-sorted merge of a base and a day's changes),
``manifest`` (the typed commit records), ``builder`` (a table's days, built and published),
``bootstrap`` (a DynamoDB export as a table's first base) and ``service`` (a run, from its event).
"""
