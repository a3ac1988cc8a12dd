"""The derivative table: one Function per op, grouped by family.

``forward`` works on NumPy arrays (``t.data``) and may call kernels; ``backward`` is written
with Tensor ops, so every gradient can itself be differentiated.
"""
from . import elementwise, matmul, movement, reduce  # noqa: F401  (registers the Functions)
from . import loss, norm  # noqa: F401  (binary cross-entropy, BatchNorm)
