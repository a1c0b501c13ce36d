"""Jobs: the model, the retry policy and the state machine's storage."""
