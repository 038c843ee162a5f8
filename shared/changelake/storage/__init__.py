"""Storage that compaction and the snapshot both stand on: gzip JSON Lines read a chunk at a time
(``lines``, ``io.Prefetcher``), sorted lines written as gzip parts left open as multipart uploads
(``io.PartsWriter``, ``parts.OpenPart``), and the external sorter (``sort``).

Kept free of imports: ``python -m changelake.compaction.check`` reads ``lines`` in a second
process, which must stay small.
"""
