"""Shared test support: helpers (``tests.support.<topic>_helpers``) and fixtures (``fixtures``).

Import helpers by their package path (``from tests.support.registry_helpers import create``);
``tests/conftest.py`` loads :mod:`tests.support.fixtures` as a pytest plugin.
"""
