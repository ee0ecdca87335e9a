"""Placeholder: filled in by the synth work in progress."""


def register(app) -> None:
    return None
