"""torch.nn.functional for tinygrad_cnn: same names, argument names and order as PyTorch."""
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
