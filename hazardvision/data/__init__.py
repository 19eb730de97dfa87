"""The data layer: engine, sessions, migrations, and the records of the bank and of the service.

Only this package imports SQLAlchemy (checked by the import contracts in pyproject.toml).
"""
