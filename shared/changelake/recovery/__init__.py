"""Recovery: what failed comes back. Dead letters move from ChangeDLQ to ChangeQueue (``dlq``);
stream batches that failed past their retries are read again from the stream
(``stream_failures``); both run the same receive, hold and release loop (``receive``)."""
