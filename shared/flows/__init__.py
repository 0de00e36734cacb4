"""WhatsApp Flows: the data-exchange endpoint's crypto, its payloads, and the private keys."""
