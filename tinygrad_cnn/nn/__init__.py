"""Neural-network building blocks (torch.nn): modules, layers, losses, init and functional."""
from . import functional  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module, Parameter  # noqa: F401
from . import init, utils  # noqa: F401
