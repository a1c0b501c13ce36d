"""SQS: job messages, routing by priority, batch sends."""
