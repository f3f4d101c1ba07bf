"""Route handlers: thin — parse the request, call a service, render the result."""
