"""Neural-network building blocks (torch.nn): modules, layers, losses, init and functional."""
from . import functional  # noqa: F401
