"""Pinned environments (and the script run in one) for the globus CLI and globus-sdk 3.x tests."""
