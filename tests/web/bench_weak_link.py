"""Benchmark: frame rate and freeze time per viewer with one viewer on a weak link, per-viewer
layers side by side with the old lowest-REMB relay (docs/benchmarks.md, "Weak links").

    tools/bench-weak-link [--profile weak|slow|lossy ...] [--json FILE]

Needs what tests/web/test_browser_weak_link.py needs (root for the network namespace,
Chromium); it lives beside the tests because it runs their scenario
(tests/web/weak_link_support.py). It prints every window of every run and, with --json,
writes the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.netns_support import WEAK, Profile, namespace
from tests.web.browser_support import chromium_session
from tests.web.weak_link_support import Run, start_call, weak_link_run

PROFILES = {
    "weak": WEAK,  # issue 12's: 2 % loss, 300 kbit/s, 200 ms each way
    "slow": Profile(delay_ms=100, rate_kbit=150),  # a crowded cell
    "lossy": Profile(delay_ms=50, loss_percent=8),  # loss without a rate limit
}


async def one(profile: Profile, adapt: bool, directory: Path) -> Run:
    with namespace() as netns:
        call = None
        try:
            async with chromium_session(describe=False) as browsers:
                call = await start_call(directory, netns, browsers, adapt=adapt)
                return await weak_link_run(call, netns, profile, adapt=adapt)
        finally:
            if call is not None:
                await call.server.stop()


def summary(run: Run) -> dict[str, object]:
    """Per window: the creditor's and the others' mean frame rate and seconds frozen."""
    out: dict[str, object] = {"adapt": run.adapt, "recovered_after_s": run.recovered_after}
    for name, window in run.windows.items():
        others = [
            (fps, window.frozen[viewer][seat])
            for viewer, seats in window.fps.items()
            if viewer != "creditor"
            for seat, fps in seats.items()
        ]
        out[name] = {
            "creditor_fps": {seat: round(f, 1) for seat, f in window.fps["creditor"].items()},
            "creditor_frozen_s": {s: round(f, 1) for s, f in window.frozen["creditor"].items()},
            "creditor_kbps": {s: round(f) for s, f in window.kbps["creditor"].items()},
            "others_mean_fps": round(sum(f for f, _ in others) / len(others), 1),
            "others_min_fps": round(min(f for f, _ in others), 1),
            "others_frozen_s": round(sum(s for _, s in others), 1),
            "others_mean_kbps": round(
                sum(
                    kbps
                    for viewer, seats in window.kbps.items()
                    if viewer != "creditor"
                    for seat, kbps in seats.items()
                    if seat != "creditor"
                )
                / 6
            ),
        }
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results, raw = {}, {}
    for name in args.profile or ["weak"]:
        for adapt in (True, False):
            with tempfile.TemporaryDirectory(prefix="courtlink-weak-") as tmp:
                run = await one(PROFILES[name], adapt, Path(tmp))
            print(run.report(), flush=True)
            key = f"{name}/{'layers' if adapt else 'lowest-remb'}"
            results[key] = summary(run)
            raw[key] = {window: asdict(w) for window, w in run.windows.items()}
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": results, "windows": raw}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
