"""Test data in the real formats, for the tests, the benchmark and the local runner: DynamoDB
stream records and realistic items (``stream_records``) and the sample events of ``events/``
(``sample_events``). Only the standard library and ``changelake`` are imported, so a benchmark
process that builds its input loads neither boto3 nor the local runner."""
