"""Helpers shared by tests (importable as ``support`` via pytest's ``pythonpath``)."""
