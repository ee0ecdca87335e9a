"""Suggested tags on a photographed wardrobe: the first answer (a fit), the answers after it
(the kept model) and a burst of one person's requests at once, against fitting every time.

Builds one person's wardrobe in a temporary SQLite database: ``--items`` items with
``--views`` vectors each (their own picture and views in outfit photos), laid out as
:class:`~fashionkit.personal.embedding.ItemEmbedder` lays them out for a detector of
``--channels`` FPN channels (256: the paper's ResNet-101 FPN), every block an item's own
direction plus photo-to-photo noise; material, brand and trend on every item, drawn with a
visible cue in some blocks; ``--new`` untagged new items. Then times, in one run:

- ``cold``: the first suggestion for a new item (:func:`suggest_tags_for_item`), which fits;
- ``warm``: the same for each of the other new items, and again for the first;
- ``burst``: ``--burst`` requests of the person at once on a cold process, wall time and fits;
- ``refit each time``: the same burst with every request fitting its own model, as without
  kept models (``TagModel.fit`` directly), wall time.

Ends with ``RESULT tag_suggestion_cold_s``, ``RESULT tag_suggestion_warm_ms`` (median) and
``RESULT tag_suggestion_burst_fits``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fashionkit.personal.tag_suggestions as ts  # noqa: E402
from fashionkit.personal.embedding import embedding_blocks, embedding_dims  # noqa: E402
from fashionkit.personal.tags import TagModel  # noqa: E402
from fashionkit.wardrobe import WardrobeItem  # noqa: E402
from fashionkit.wardrobe.database import WardrobeDatabase  # noqa: E402

KEY = "benchmark-embedder"
MATERIALS = ("cotton", "denim", "wool", "leather", "silk", "linen")
BRANDS = ("northline", "sole", "kobalt", "verano", "maison rue", "fernwood")
TRENDS = ("minimal", "preppy", "romantic", "statement")
CATEGORIES = (0, 1, 2, 4, 6, 7, 8, 10, 23, 24)


def build(db: WardrobeDatabase, items: int, views: int, channels: int, new: int, seed: int):
    rng = np.random.default_rng(seed)
    dims = embedding_dims(channels)
    probe = embedding_blocks(dims)
    wardrobe = db.wardrobe("alice")
    cue = {t: rng.normal(size=(len(v), dims)) for t, v in
           (("material", MATERIALS), ("brand", BRANDS), ("trend", TRENDS))}
    vectors, samples = {}, []
    for n in range(items + new):
        key = f"item-{n:04d}"
        tags = {"material": int(rng.integers(len(MATERIALS))),
                "brand": int(rng.integers(len(BRANDS))), "trend": int(rng.integers(len(TRENDS)))}
        look = rng.normal(size=dims)
        for t, k in tags.items():  # each tag visible in one block
            block = probe[{"material": "weave", "brand": "mark", "trend": "print"}[t]]
            look[block] += 2.0 * cue[t][k][block]
        if n < items:
            wardrobe.add(WardrobeItem(id=key, category_id=int(rng.choice(CATEGORIES)),
                                      material=MATERIALS[tags["material"]],
                                      brand=BRANDS[tags["brand"]], trend=TRENDS[tags["trend"]]))
        else:
            wardrobe.add(WardrobeItem(id=key, category_id=int(rng.choice(CATEGORIES))))
        vectors[key] = look
        samples += [(key, f"photo-{n}-{v}", look + 0.5 * rng.normal(size=dims))
                    for v in range(views - 1)]
    wardrobe.set_embeddings(KEY, vectors)
    wardrobe.add_views(KEY, samples)
    return wardrobe, [f"item-{n:04d}" for n in range(items, items + new)]


def burst(wardrobe, item: str, n: int) -> float:
    threads = [threading.Thread(target=ts.suggest_tags_for_item, args=(wardrobe, item, KEY))
               for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--new", type=int, default=8)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="60 items, 4 views, burst of 4")
    args = parser.parse_args()
    if args.quick:
        args.items, args.views, args.burst = 60, 4, 4
    with tempfile.TemporaryDirectory() as tmp, \
            WardrobeDatabase(f"sqlite:///{Path(tmp) / 'w.sqlite'}") as db:
        wardrobe, new = build(db, args.items, args.views, args.channels, args.new, args.seed)
        keys, _, vectors = wardrobe.embedding_samples(KEY)
        print(f"wardrobe: {args.items} tagged + {len(new)} new items, {len(keys)} vectors of "
              f"{vectors.shape[1]} dims")
        fits: list[tuple[tuple, dict]] = []  # the arguments of every fit the library makes
        real = TagModel.fit

        def counted(*a, **k):
            fits.append((a, k))
            return real(*a, **k)

        TagModel.fit = counted  # type: ignore[method-assign]
        try:
            ts._FITTED.clear()
            t0 = time.perf_counter()
            first = ts.suggest_tags_for_item(wardrobe, new[0], KEY)
            cold = time.perf_counter() - t0
            warm = []
            for item in [*new[1:], new[0]]:
                t0 = time.perf_counter()
                again = ts.suggest_tags_for_item(wardrobe, item, KEY)
                warm.append(time.perf_counter() - t0)
                if item == new[0]:
                    assert again == first
            warm_fits = len(fits)
            fit_args, fit_kwargs = fits[0]
            ts._FITTED.clear()
            fits.clear()
            kept_wall = burst(wardrobe, new[0], args.burst)
            burst_fits = len(fits)
        finally:
            TagModel.fit = real  # type: ignore[method-assign]
        # Without kept models every request fits: the same burst, each fitting on its own, on
        # the very inputs the library fitted on.
        threads = [threading.Thread(target=real, args=fit_args, kwargs=fit_kwargs)
                   for _ in range(args.burst)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refit_wall = time.perf_counter() - t0
    print(f"{'':34s} {'wall':>9s} {'fits':>5s}")
    print(f"  first suggestion (cold)          {cold:8.2f}s {1:5d}")
    print(f"  next {len(warm)} suggestions, median    {statistics.median(warm) * 1000:7.1f}ms "
          f"{warm_fits - 1:5d}")
    print(f"  burst of {args.burst}, kept models          {kept_wall:8.2f}s {burst_fits:5d}")
    print(f"  burst of {args.burst}, refit each time      {refit_wall:8.2f}s {args.burst:5d}")
    print(f"RESULT tag_suggestion_cold_s {cold:.2f}")
    print(f"RESULT tag_suggestion_warm_ms {statistics.median(warm) * 1000:.1f}")
    print(f"RESULT tag_suggestion_burst_fits {burst_fits}")


if __name__ == "__main__":
    main()
