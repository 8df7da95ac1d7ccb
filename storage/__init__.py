"""The database: models, migrations, and the SQL, as small functions over a session."""
