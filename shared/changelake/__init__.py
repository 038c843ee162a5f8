"""changelake: DynamoDB Streams to an exactly-once data lake on S3."""
