"""`make fuzz`: run one target under atheris (libFuzzer, coverage-guided) for a while.

    python -m tests.fuzz TARGET [--seconds 60]

The run starts from the target's seed corpus (tests/fuzz/seeds.py) and its saved
regression inputs (tests/fuzz/corpus/TARGET/), mutates with its dictionary of tokens
(tests/fuzz/dicts/), keeps the inputs that found new coverage in
var/fuzz/TARGET/ (not committed: a later run starts from there and gets deeper), and writes
an input that crashes, hangs (over --timeout-s) or blows the memory limit to
tests/fuzz/corpus/TARGET/ (crash-*, timeout-*, oom-*), where `make test` replays it
once it is understood and fixed. Exit status: 0 nothing found, non-zero a finding.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
WORK = ROOT / "var" / "fuzz"
# libFuzzer dictionaries (tests/fuzz/dicts/): tokens a byte mutator rarely builds by chance
DICTS = {"fix_frames": "fix.dict", "fix_session": "fix.dict", "config": "config.dict"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--timeout-s", type=int, default=10, help="per input")
    parser.add_argument("--rss-mb", type=int, default=2048)
    ns = parser.parse_args(argv)
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["protocol", "actors", "tests.fuzz", "simplefix"]):
        from tests.fuzz.mutators import mutate_fix_session
        from tests.fuzz.seeds import SEEDS
        from tests.fuzz.targets import TARGETS
    if ns.target not in TARGETS:
        print(f"unknown target {ns.target!r}; one of {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    target = TARGETS[ns.target]
    work = WORK / ns.target
    crashes = CORPUS / ns.target
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS[ns.target]():
        (work / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)
    dictionary = DICTS.get(ns.target)
    libfuzzer = [
        sys.argv[0],
        *([f"-dict={HERE / 'dicts' / dictionary}"] if dictionary else []),
        f"-max_total_time={ns.seconds}",
        f"-timeout={ns.timeout_s}",
        f"-rss_limit_mb={ns.rss_mb}",
        "-max_len=65536",
        f"-artifact_prefix={crashes}/",
        str(work),
        str(crashes),
    ]
    mutator = None
    if ns.target == "fix_session":

        def mutator(data: bytes, max_size: int, seed: int) -> bytes:
            """Half field-level (tests/fuzz/mutators.py), half libFuzzer's bytes."""
            if seed % 2:
                return mutate_fix_session(data, seed)[:max_size]
            return bytes(atheris.Mutate(data, max_size))

    atheris.Setup(libfuzzer, target, custom_mutator=mutator)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a finding
    return 0


if __name__ == "__main__":
    sys.exit(main())
