"""Placeholder: filled by the loss work (see its issue)."""
__all__: list = []
