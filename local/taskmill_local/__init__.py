"""The embedded local stack and operator CLI; never shipped to Lambda."""
