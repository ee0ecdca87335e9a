"""Placeholder: filled in by the convert work in progress."""


def register(app) -> None:
    return None
