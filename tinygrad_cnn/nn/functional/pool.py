"""Placeholder: filled by the pool work (see its issue)."""
__all__: list = []
