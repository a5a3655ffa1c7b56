"""The database schema's migrations and their runner (``mutt db migrate``, ``mutt run``)."""
