"""Train LeNet-5 on Fashion-MNIST: ``demos/mnist.py --dataset fashion`` (>= 90% test accuracy).

    python demos/fashion_mnist.py --data-dir /path/to/datasets     # reads DIR/fashion-mnist/

Same options as demos/mnist.py (see ``--help`` and docs/demos.md); results go to
runs/fashion-mnist by default. Debian users can ``apt install dataset-fashion-mnist``: the files in
/usr/share/datasets/fashion-mnist/ are found without --data-dir.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

DEFAULT_THREADS = 1  # as demos/mnist.py (read by _common before NumPy loads)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import mnist  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    return mnist.main(argv, default_dataset="fashion")


if __name__ == "__main__":
    _common.run(main)
