"""The web service: a FastAPI application over the wardrobe, coordination and ingest libraries.

Public API::

    from fashionkit.service import create_app
    app = create_app("sqlite:///wardrobe.sqlite", "data/", weights="run/model.pt")
    # serve with uvicorn, or: fashionkit serve --db URL --data-dir DIR --weights CKPT
"""

from fashionkit.service.app import ServiceSettings, create_app

__all__ = ["create_app", "ServiceSettings"]
