"""Talking to the Cloud API: the error table (errors.py), and the client to come (issue 5)."""
