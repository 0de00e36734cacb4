"""Examples to copy: business logic for the message worker (``WAPIPE_MESSAGE_HANDLERS``)."""
