"""HTTP: routes, DTO rendering, middleware and error mapping. Nothing else knows HTTP."""
