"""The way in: stream records become change lines in SQS (consumer), then hourly raw/ objects
(aggregator); what cannot be processed is kept in quarantine with its reason."""
