"""Talking to the Cloud API: the error table (errors.py) and the client (client.py)."""
