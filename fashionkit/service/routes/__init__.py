"""The service's routes, one router per resource; :func:`~fashionkit.service.app.create_app`
includes them all."""

from fashionkit.service.routes import (
    accounts,
    exchange,
    items,
    model,
    outfit_photos,
    outfits,
    pages,
    photos,
)

ROUTERS = (
    pages.router,
    accounts.router,
    items.router,
    outfits.router,
    exchange.router,
    photos.router,
    outfit_photos.router,
    model.router,
)

__all__ = ["ROUTERS"]
