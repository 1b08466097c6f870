"""Alembic migrations of every table the framework keeps in SQL (see memory.migrate)."""
