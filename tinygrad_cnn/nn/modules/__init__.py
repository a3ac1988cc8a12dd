"""Layers as modules (torch.nn's classes)."""
from .module import Module, Parameter, RemovableHandle  # noqa: F401
from .container import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
