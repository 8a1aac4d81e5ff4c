"""The `fraud` command: the composition root that may use every layer (core, assets, serving)."""
