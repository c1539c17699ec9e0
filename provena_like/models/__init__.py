"""Pydantic wire models: the one definition of the API shared by the SDK and the server."""
