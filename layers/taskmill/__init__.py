"""Taskmill: the code every Lambda function shares (shipped as a Lambda layer)."""
