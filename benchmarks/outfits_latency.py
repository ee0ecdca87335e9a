"""Top-10 outfit latency on a 10,000-item wardrobe (goal: p95 ≤ 150 ms in the library call).

Builds a seeded synthetic wardrobe (realistic category mix: tops, bottoms, dresses, shoes,
outer layers, accessories; CSS colours; 20 % patterned; season tags; formality on half the
items) and 100 feedback events, then times ``suggest_outfits(index, conditions, k=10,
taste=taste)`` over varied requests: no conditions, season, temperature (with and without an
outer layer), occasion, brand/colour filters, "not worn in 14 days" and a locked item. The
wardrobe index and the taste model are built once, as a service keeps them between requests;
their build times are printed beside the request latencies, together with the one-shot call
from plain items (index + taste + search) for comparison.

For scale: the cross product of this wardrobe (tops × bottoms × shoes × outer layers ×
accessory pairs) is printed too; the search never enumerates it.

Ends with ``RESULT outfits_p95_ms_10k X``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashionkit.outfits import Conditions, TasteModel, WardrobeIndex, suggest_outfits  # noqa: E402
from fashionkit.outfits.slots import slot_of  # noqa: E402
from fashionkit.wardrobe import WardrobeItem  # noqa: E402
from fashionkit.wardrobe.colors import named_colors  # noqa: E402

# Category mix of a large wardrobe, weights roughly as people own them.
MIX = {
    0: 10, 1: 14, 2: 7, 6: 10, 7: 4, 8: 6, 10: 7, 11: 2, 23: 10, 3: 3, 4: 5, 5: 1, 9: 3,
    12: 0.5, 24: 5, 14: 2, 25: 2, 19: 2, 18: 1, 13: 1, 16: 1,
}  # fmt: skip
PATTERNS = ["stripe", "floral", "check", "dot", "leopard", "plain", "herringbone"]
SEASONS = [(), ("summer",), ("winter",), ("autumn", "winter"), ("spring", "summer"), ("spring",)]
BRANDS = ["Acme", "Northwind", "Contoso", "Fabrikam", "Tailspin", None, None]


def make_wardrobe(n: int, seed: int) -> list[WardrobeItem]:
    rng = np.random.default_rng(seed)
    categories = np.array(list(MIX))
    weights = np.array(list(MIX.values()), dtype=float)
    colours = [c.hex for c in named_colors()]
    today = dt.date(2026, 11, 24)
    items = []
    for k in range(n):
        items.append(
            WardrobeItem(
                id=f"item-{k:05d}",
                category_id=int(rng.choice(categories, p=weights / weights.sum())),
                colors=tuple(str(c) for c in rng.choice(colours, size=int(rng.integers(1, 3)))),
                pattern=str(rng.choice(PATTERNS)) if rng.random() < 0.2 else None,
                season=SEASONS[int(rng.integers(len(SEASONS)))],
                brand=BRANDS[int(rng.integers(len(BRANDS)))],
                formality=int(rng.integers(1, 6)) if rng.random() < 0.5 else None,
                favorite=bool(rng.random() < 0.05),
                last_worn=today - dt.timedelta(days=int(rng.integers(0, 60)))
                if rng.random() < 0.3
                else None,
            )
        )
    return items


def requests(items: list[WardrobeItem], count: int) -> list[Conditions]:
    rng = np.random.default_rng(1)
    today = dt.date(2026, 11, 24)
    lockable = [i.id for i in items if slot_of(i.category_id) in (0, 1, 2, 3, 4)]
    kinds = [
        lambda: Conditions(),
        lambda: Conditions(season=str(rng.choice(["spring", "summer", "autumn", "winter"]))),
        lambda: Conditions(temperature=float(rng.uniform(-10, 35))),
        lambda: Conditions(temperature=float(rng.uniform(15, 24)), season="spring"),
        lambda: Conditions(occasion=str(rng.choice(["work", "casual", "party", "formal"]))),
        lambda: Conditions(include_brands=("Acme", "Contoso"), exclude_colors=("pink",)),
        lambda: Conditions(not_worn_days=14, today=today, temperature=10.0),
        lambda: Conditions(lock=(str(rng.choice(lockable)),), temperature=12.0),
    ]
    return [kinds[k % len(kinds)]() for k in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed requests")
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    n_requests = 40 if args.quick else 200

    items = make_wardrobe(args.items, seed=0)
    rng = np.random.default_rng(2)
    ids = [i.id for i in items]

    t0 = time.perf_counter()
    index = WardrobeIndex.build(items)
    build_ms = (time.perf_counter() - t0) * 1000
    # Feedback on random item sets stands in for a person's history (100 events).
    feedback = [
        (
            tuple(rng.choice(ids, size=4, replace=False)),
            str(rng.choice(["like", "dislike", "wore"])),
        )
        for _ in range(100)
    ]
    t0 = time.perf_counter()
    taste = TasteModel.fit(index, feedback)
    taste_ms = (time.perf_counter() - t0) * 1000

    slot_counts = np.bincount(index.slot[index.slot >= 0], minlength=6)
    acc = int(slot_counts[5])
    cross = (
        (int(slot_counts[0]) * int(slot_counts[1]) + int(slot_counts[2]))
        * int(slot_counts[3])
        * (int(slot_counts[4]) + 1)
        * (1 + acc + acc * (acc - 1) // 2)
    )
    print(
        f"wardrobe: {len(items)} items, slots (top, bottom, one piece, footwear, outer, accessory) = {slot_counts.tolist()}"
    )
    print(f"cross product of possible outfits: {cross:.3e} (not enumerated)")
    print(
        f"index build: {build_ms:.1f} ms, taste fit (100 events): {taste_ms:.1f} ms (once per wardrobe change)"
    )

    conditions = requests(items, n_requests)
    for c in conditions[:8]:  # warm-up (imports, caches)
        suggest_outfits(index, c, k=10, taste=taste)
    times = []
    empty = 0
    for c in conditions:
        t0 = time.perf_counter()
        outfits = suggest_outfits(index, c, k=10, taste=taste)
        times.append((time.perf_counter() - t0) * 1000)
        empty += len(outfits) < 10
    times_arr = np.array(times)
    p50, p95, worst = np.percentile(times_arr, 50), np.percentile(times_arr, 95), times_arr.max()

    t0 = time.perf_counter()
    suggest_outfits(items, Conditions(temperature=10.0), k=10, feedback=feedback)
    one_shot_ms = (time.perf_counter() - t0) * 1000

    print(f"{'':32}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    print(
        f"{'suggest_outfits (top-10)':32}{p50:10.1f}{p95:10.1f}{worst:10.1f}   over {len(times)} requests"
    )
    print(f"{'one-shot from items':32}{one_shot_ms:10.1f}   (index + taste + search, 1 call)")
    print(f"requests with fewer than 10 outfits: {empty}; mean {statistics.fmean(times):.1f} ms")
    print(f"RESULT outfits_p95_ms_10k {p95:.2f}")


if __name__ == "__main__":
    main()
