"""scikit-learn's digits: a small MLP trained with cross-entropy and with label smoothing."""
