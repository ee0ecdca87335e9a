"""The browser page: one HTML document, one script and an icon, no build step, served by the app.

The files are package data in ``fashionkit/service/static/`` (``index.html``, ``ui.js``,
``favicon.svg``), read once when this module is imported. The script talks only to the REST API
with the bearer token kept in ``sessionStorage``; everything from the server is inserted as
text (``textContent``), never as HTML, and images that need the token are fetched and shown as
``blob:`` URLs. The page is served with a Content-Security-Policy that allows no inline script.
Logging out empties every part of the page that showed the person's data (another person may
log in next).

What the page offers: log in or create an account; upload a photo and see the labelled overlay
(Fig. 8), the super-category view (Fig. 9) and the items found, as cut-outs; earlier uploads
and their status; the wardrobe as a gallery of cut-outs (or colour swatches for items entered
by hand) with filters and editable tags; adding an item by hand; outfit suggestions with their
explanations and like / dislike / wore buttons; "today's outfit": the recognised items and the
new ones offered, each offer with its suggested tags (value, confidence, learned or "your
usual") in inputs that one click adds with the item, as they stand or edited; changing the password (the page keeps the new
token the server answers with; every other token of the account ends). Elements tests rely on
carry ids or ``data-*`` attributes (``data-item``, ``data-outfit``, ``data-kind``,
``data-job``).
"""

from importlib import resources

__all__ = ["PAGE", "SCRIPT", "CSP", "ICON"]

CSP = (
    "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> str:
    return resources.files("fashionkit.service").joinpath("static", name).read_text("utf-8")


PAGE = _static("index.html")
SCRIPT = _static("ui.js")
# Served at /favicon.svg: browsers ask for an icon, and without one every page load logs a 404.
ICON = _static("favicon.svg")
