"""The service's one HTTP server and what every route shares: bounded bodies, health checks."""
