"""Placeholder: filled by the conv work (see its issue)."""
__all__: list = []
