"""Public AWS list prices, us-east-1, the one place the benchmark's dollars come from.

Dated 2026-11-22. Sources (the services' public pricing pages; the Firehose 5 KB rounding and the
DynamoDB 1 KB change-data-capture unit were checked against the pages named below, the other
figures are as the project brief quotes the price list and were not re-checked here):

* Amazon SQS pricing (aws.amazon.com/sqs/pricing): standard queue, first tier after the free tier;
  every 64 KB chunk of a request's payload is billed as one request.
* AWS Lambda pricing (aws.amazon.com/lambda/pricing): Arm (Graviton) duration, first tier; requests.
* Amazon S3 pricing (aws.amazon.com/s3/pricing): S3 Standard PUT/COPY/POST/LIST and GET requests.
* Amazon Data Firehose pricing (aws.amazon.com/firehose/pricing): ingestion (Direct PUT and
  Kinesis Data Streams as source) is billed per GB with each record rounded up to 5 KB;
  dynamic partitioning per GB processed and per 1,000 S3 objects delivered.
* Amazon Kinesis Data Streams pricing (aws.amazon.com/kinesis/data-streams/pricing), on-demand mode.
* Amazon DynamoDB pricing (aws.amazon.com/dynamodb/pricing/on-demand): change data capture for
  Kinesis Data Streams, per million change data capture units (1 KB of the larger image each,
  docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html). DynamoDB Streams reads by
  Lambda triggers are free (same page), so changelake's source costs nothing extra.
"""

from __future__ import annotations

GB = 1024**3
KB = 1024

SQS_PER_MILLION_REQUESTS = 0.40
SQS_BILLING_CHUNK_BYTES = 64 * KB

LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20

S3_PUT_PER_THOUSAND = 0.005
S3_GET_PER_THOUSAND = 0.0004

FIREHOSE_INGEST_PER_GB = 0.029
FIREHOSE_RECORD_ROUNDING_BYTES = 5 * KB
FIREHOSE_DYNAMIC_PARTITIONING_PER_GB = 0.020
FIREHOSE_DYNAMIC_PARTITIONING_PER_THOUSAND_OBJECTS = 0.005
#: Firehose's smallest buffer with dynamic partitioning (64 MiB), which bounds objects delivered.
FIREHOSE_DYNAMIC_PARTITIONING_BUFFER_BYTES = 64 * 1024**2

KINESIS_ON_DEMAND_WRITE_PER_GB = 0.08
KINESIS_ON_DEMAND_READ_PER_GB = 0.04
KINESIS_ON_DEMAND_STREAM_HOUR = 0.04
KINESIS_RECORD_ROUNDING_BYTES = 1 * KB

DYNAMODB_CDC_PER_MILLION_UNITS = 0.10
DYNAMODB_CDC_UNIT_BYTES = 1 * KB

HOURS_PER_MONTH = 730

#: AWS Step Functions pricing (aws.amazon.com/step-functions/pricing): Standard workflows, per state
#: transition (a Distributed Map's child executions are Standard too: each of their states counts).
STEP_FUNCTIONS_PER_THOUSAND_TRANSITIONS = 0.025

#: Amazon Athena pricing (aws.amazon.com/athena/pricing): SQL queries, per TB of data scanned
#: (compressed bytes as stored; 10 MB minimum per query).
ATHENA_PER_TB_SCANNED = 5.0

#: Amazon EMR Serverless pricing (aws.amazon.com/emr/pricing, "Amazon EMR Serverless"): Arm (Graviton)
#: workers, per vCPU-hour and per GB-hour, billed per second with a one-minute minimum per worker.
EMR_SERVERLESS_ARM_PER_VCPU_HOUR = 0.042094
EMR_SERVERLESS_ARM_PER_GB_HOUR = 0.004628
