"""The `vdreid` command line: one small module per command (see app.py)."""
