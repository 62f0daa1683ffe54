"""A small CNN for 28×28 grayscale images (Fashion-MNIST).

``build`` is the factory ``lsfix extract`` loads as ``examples.fashion_mnist.net:build``
(run from the repository root) together with ``--weights state_dict.pt``.

Architecture (103,018 parameters for K = 10; sized so that one model trains in about a
minute on one shared CPU core)::

    conv 3×3, 1→8, ReLU, max-pool 2    -> 8×14×14
    conv 3×3, 8→16, ReLU, max-pool 2   -> 16×7×7
    flatten, linear 784→128, ReLU
    linear 128→K                        (logits)

Inputs are ``(N, 1, 28, 28)`` float tensors, normalised as ``(x/255 − 0.2860) / 0.3530``
(Fashion-MNIST training-set mean and std), the same for training and for ``lsfix extract``
(``--mean 0.2860 --std 0.3530``).
"""

from __future__ import annotations

from torch import nn

#: Normalisation on the [0, 1] scale, shared by train.py and the extract commands.
MEAN = 0.2860
STD = 0.3530

#: Fashion-MNIST class names, in label order.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def build(num_classes: int = 10) -> nn.Module:
    """Return the untrained network (logits of shape ``(N, num_classes)``)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 128), nn.ReLU(inplace=True),
        nn.Linear(128, num_classes),
    )


def build_mlp(num_classes: int = 10) -> nn.Module:
    """A two-hidden-layer MLP (``examples.fashion_mnist.net:build_mlp``), the second
    architecture of the α sweep (``sweep.py``); same inputs and normalisation as :func:`build`::

        flatten 784, linear 784→512, ReLU, linear 512→256, ReLU, linear 256→K
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 512), nn.ReLU(inplace=True),
        nn.Linear(512, 256), nn.ReLU(inplace=True),
        nn.Linear(256, num_classes),
    )


#: Architectures by name: factory and the ``lsfix extract`` model spec.
ARCHS = {"cnn": (build, "examples.fashion_mnist.net:build"),
         "mlp": (build_mlp, "examples.fashion_mnist.net:build_mlp")}
