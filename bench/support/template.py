"""The template's sizes and limits the rows measure against (template.yaml)."""

from __future__ import annotations

#: The template's memory sizes (template.yaml), for the memory checks and GB-seconds.
CONSUMER_MEMORY_MB = 512
AGGREGATOR_MEMORY_MB = 1024
COMPACTION_MEMORY_MB = 1024
#: Lambda's largest synchronous/event-source payload: the cap on a batch, whatever its size setting.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_MESSAGE_BYTES = 262_144  # template default MaxMessageBytes
