"""Helpers shared by the assets of the code location (no asset definitions here)."""
