"""Software-defined assets of the fraud platform, one module per asset and its checks."""
