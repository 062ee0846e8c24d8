"""`make test`'s part of the fuzzing (see tests/fuzz/targets.py for each target's invariant):
every saved input of tests/fuzz/corpus/<target>/ (the crashes and hangs `make fuzz` found,
kept as regression cases once fixed) and every seed replays cleanly, and a short
deterministic run per target mutates the seeds (hypothesis, derandomized: the same inputs
on every run) as `make fuzz` does for longer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutators import mutate_fix_session
from tests.fuzz.seeds import SEEDS
from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).parent / "corpus"
SAVED = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.parent.name in TARGETS)
# Values that broke parsers before: huge numbers, separators, non-finite decimals.
_TOKENS = [b"\x01", b"=", b"\x0110=000\x01", b"9999999999", b"4294967295", b"-1", b"0"]
_TOKENS += [b"NaN", b"1e999999", b"\xff", b"\x00", b"8=FIX.4.4\x01", b"[[[[", b'"\\u0000"']
_NUMBERS = [b"0", b"-1", b"2147483648", b"4294967295", b"9999999999", b"1e999999", b"nan"]
_NUMBER = re.compile(rb"(?<=[=\s])-?\d+(?:\.\d+)?(?=[\x01\s])")
_EXAMPLES = {"envelope": 400, "fix_frames": 300, "fix_session": 1000, "config": 250}


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(max_size=8))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == 3:
            data[pos:pos] = draw(st.sampled_from(_TOKENS))
        elif op == 4:
            start = draw(st.integers(0, len(data)))
            data[pos:pos] = data[start : start + draw(st.integers(1, 64))]
        else:  # a number (a FIX value, a TOML value) becomes an extreme one
            match = _NUMBER.search(data, pos) or _NUMBER.search(data)
            if match:
                data[match.start() : match.end()] = draw(st.sampled_from(_NUMBERS))
    return bytes(data)


@st.composite
def _fields_mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for seed in draw(st.lists(st.integers(0, 2**32), min_size=1, max_size=4)):
        data = mutate_fix_session(data, seed)
    return data


@pytest.mark.parametrize("path", SAVED, ids=[f"{p.parent.name}/{p.name}" for p in SAVED])
def test_saved_crashing_input_is_handled(path: Path) -> None:
    """Each input a fuzzer once crashed (or hung) a parser with now meets the invariant."""
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_inputs_meet_the_invariant(name: str) -> None:
    """The valid inputs each fuzz run starts from pass."""
    for seed in SEEDS[name]():
        TARGETS[name](seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_deterministic_fuzz_run(name: str) -> None:
    """Mutated seeds (the same on every run) meet the target's invariant."""
    target, seeds = TARGETS[name], SEEDS[name]()
    inputs = _mutated(seeds)
    if name == "fix_session":  # field-level too, as make fuzz does (tests/fuzz/mutators.py)
        inputs = st.one_of(inputs, _fields_mutated(seeds))

    @settings(
        max_examples=_EXAMPLES[name],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def run(data: bytes) -> None:
        target(data)

    run()
