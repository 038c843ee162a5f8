"""What changelake reads and writes, as pure functions (no AWS): DynamoDB JSON, the change line,
the SQS envelope, the S3 layout and Lambda's event shapes."""
