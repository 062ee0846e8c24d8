"""Structure-aware mutation of `fix_session` inputs: a byte mutator rarely turns one FIX
value into another valid-looking one (a NewSeqNo of 9999999999) without breaking the
message around it, so this one works on fields: it replaces a value with an extreme or
odd one, drops, duplicates or moves a field, or drops, duplicates or swaps a message.
Deterministic for a given `seed` (libFuzzer's custom mutator and the short run use it)."""

from __future__ import annotations

import random

VALUES = [
    b"0", b"1", b"-1", b"2147483647", b"2147483648", b"4294967295", b"4294967296",
    b"9999999999", b"99999999999", b"1e999999", b"9E+999999", b"NaN", b"Infinity", b"-0",
    b"0.000000000000000000000000000001", b"Y", b"N", b"A", b"5", b"", b" ", b"\xff",
    b"20231114-22:13:20", b"99991231-23:59:60.999999999", b"x" * 300, b"a=b",
]  # fmt: skip
NUMBERS = [b"0", b"-1", b"2147483648", b"4294967295", b"4294967296", b"9999999999", b"1e9"]
TAGS = [b"34", b"35", b"36", b"43", b"52", b"7", b"16", b"45", b"108", b"123", b"141", b"95"]


def mutate_fix_session(data: bytes, seed: int) -> bytes:
    """One field- or message-level mutation of a `fix_session` input (flags byte, then
    messages separated by newlines, each a run of tag=value fields)."""
    if not data:
        return b"\x00"
    rng = random.Random(seed)
    flags, records = data[:1], data[1:].split(b"\n")
    i = rng.randrange(len(records))
    fields = records[i].split(b"\x01")
    op = rng.randrange(14)  # 7..13: a value replaced (the mutation that gets deepest)
    if op == 0 and len(records) > 1:
        del records[i]
    elif op == 1:
        records.insert(rng.randrange(len(records) + 1), records[i])
    elif op == 2:
        j = rng.randrange(len(records))
        records[i], records[j] = records[j], records[i]
    elif op == 3:
        flags = bytes([rng.randrange(8)])
    else:
        k = rng.randrange(len(fields))
        tag, _, value = fields[k].partition(b"=")
        if op == 4 and len(fields) > 1:
            del fields[k]
        elif op == 5:
            fields.insert(rng.randrange(len(fields) + 1), fields[k])
        elif op == 6:
            fields.insert(rng.randrange(len(fields) + 1), rng.choice(TAGS) + b"=" + value)
        else:  # a number mostly by an extreme number, anything by anything odd
            odd = NUMBERS if value.isdigit() and rng.random() < 0.8 else VALUES
            fields[k] = tag + b"=" + rng.choice(odd)
        records[i] = b"\x01".join(fields)
    return flags + b"\n".join(records)
