"""Tessera's pure engine: schemas from SQL and dbt, the schema diff, the rule catalog,
column-level lineage, impact and migration suggestions.

No network, no database, no clock: ``rules`` never imports ``app``.
"""
