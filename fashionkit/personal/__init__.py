"""Personalisation: recognising a person's own items, learning their tags, fine-tuning their detector."""

__all__ = []
