"""Adapters to AWS services. Each takes its boto3 client injected (``client=None`` builds one lazily);
the domain code sees them through the small protocols of ``base``."""
