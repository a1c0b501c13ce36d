"""Accounts and refresh tokens."""
