"""Does fine-tuning on a person's corrected photos help? Base vs personal detector on the
person's new photos.

A base detector trained on the generic synthetic world (``--base CHECKPOINT``, or trained here
for ``--base-minutes`` on ``--world-images`` pictures, by ``personalization.py``'s
``train_base``) is fine-tuned with
:func:`fashionkit.personal.finetune.finetune_personal` on a synthetic personal closet's labelled
photos (``--closet DIR`` from ``fashionkit synth closet``, or generated here from ``--seed``) for
at most ``--minutes`` of wall time, then both models' mask AP50 / AP are measured on the
closet's new photos (same base, same photos), with the evaluator ``fashionkit evaluate`` uses.

The goal: AP50 at least 0.15 above the base after ≤ 5 minutes of fine-tuning on 2 CPU cores for
~30 photos. ``benchmarks/personalization.py`` prints the same two RESULT lines from
:func:`~fashionkit.personal.finetune.measure_personal_gain`.

    .venv/bin/python benchmarks/personal_finetune.py [--quick] [--base MODEL.pt] [--closet DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small closet, 1-minute base, 1-minute fine-tuning")
    parser.add_argument("--base", type=Path, help="base checkpoint (default: train one here)")
    parser.add_argument("--base-minutes", type=float, default=10.0)
    parser.add_argument("--world-images", type=int, default=400)
    parser.add_argument("--closet", type=Path, help="closet folder (default: generate one)")
    parser.add_argument("--labelled", type=int, default=30, help="labelled photos (generated)")
    parser.add_argument("--new", type=int, default=20, help="new photos (generated)")
    parser.add_argument("--minutes", type=float, default=5.0, help="fine-tuning budget")
    parser.add_argument("--seed", type=int, default=1, help="closet seed (held out: not 0)")
    parser.add_argument("--out", type=Path, help="keep the base, closet and model here")
    args = parser.parse_args()
    if args.quick:
        args.base_minutes, args.world_images, args.minutes = 1.0, 48, 1.0
        args.labelled, args.new = 8, 6

    from benchmarks.personalization import train_base
    from fashionkit.data.synth.closet import generate_closet
    from fashionkit.personal.finetune import measure_personal_gain

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        base = args.base or train_base(root / "base", args.base_minutes, args.world_images)
        closet = args.closet
        if closet is None:
            closet = root / "closet"
            generate_closet(closet, labelled_photos=args.labelled, new_photos=args.new,
                            seed=args.seed)
        started = time.perf_counter()
        r = measure_personal_gain(base, closet / "labelled", closet / "new",
                                  max_minutes=args.minutes, out_path=root / "personal.pt")
        print(f"fine-tuned on {r['photos']:.0f} photos: {r['steps']:.0f} steps in "
              f"{r['finetune_minutes']:.2f} min (with evaluation {time.perf_counter() - started:.0f} s)")
        print("model        mask_AP50  mask_AP")
        print(f"base         {r['base_ap50']:9.3f}  {r['base_ap']:7.3f}")
        print(f"personal     {r['personal_ap50']:9.3f}  {r['personal_ap']:7.3f}")
    print(f"RESULT personal_ap50_gain {r['personal_ap50_gain']:.4f}")
    print(f"RESULT finetune_minutes {r['finetune_minutes']:.2f}")


if __name__ == "__main__":
    main()
