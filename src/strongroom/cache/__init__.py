"""Redis: client, rate limiter. Never holds plaintext PII."""
