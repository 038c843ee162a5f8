"""Compaction: each hour of raw/ becomes the exactly-once compacted/ layer (see ``compactor``).

Kept free of imports: ``python -m changelake.compaction.check`` runs in a second process, which
must stay small.
"""
