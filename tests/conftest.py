"""Shared test plumbing. This file also puts tests/ on sys.path, so test
modules can import the helpers beside it (backend_selection, reference_rank)."""
