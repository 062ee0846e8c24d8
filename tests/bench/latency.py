"""`python -m tests.bench.latency`: the `oms` section's latency loop alone (one system,
`LAT_ORDERS` single orders, each next to a raw zmq chain and the floor chain of the same
hops and fdatasyncs; `tests.bench.oms.latency`), in ~20 s: for A/B runs of the p50 ratio,
alternated between two checkouts. Not a `make bench` section (it has no `run()`). Prints
and writes var/bench/latency.json: p50/p99, the floor's, both ratios, the stages."""

from __future__ import annotations

import json

from tests.bench._stats import precompile
from tests.bench.oms import _config, latency
from tests.helpers import REPO_ROOT
from tests.integration.oms_support import OmsSystem

OUT = REPO_ROOT / "var" / "bench" / "latency.json"


def main() -> None:
    precompile()  # as `make bench` does
    sut = OmsSystem(overrides=_config())
    try:
        sut.start()
        row = latency(sut)
    finally:
        sut.destroy()
    system, floor = row["submit_to_accepted_event_ms"], row["floor_hops_and_fsyncs_ms"]
    out = {
        "p50_ms": system["median"], "p99_ms": system["p99"],
        "floor_p50_ms": floor["median"], "floor_p99_ms": floor["p99"],
        "ratio_p50": row["ratio_p50"], "ratio_p99": row["ratio_p99"],
        "stages_ms": {k: v["median"] for k, v in row["stages_ms"].items()},
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
