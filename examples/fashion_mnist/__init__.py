"""Fashion-MNIST: cross-entropy vs label smoothing, then MaxLogit-pNorm (see README.md here)."""
