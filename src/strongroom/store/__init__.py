"""PostgreSQL adapters: pools, migrations and repositories. SQL lives only here and in audit/."""
