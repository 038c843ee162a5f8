"""Adapters to AWS services. Each takes its boto3 client injected (``client=None`` builds one lazily)."""
