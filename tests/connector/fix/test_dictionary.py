"""The checked-in FIX 4.4 dictionary is what deploy/tools/gen_fix_dictionary.py makes of
the reference (/work/shared/FIX44_REFERENCE.txt, beside the repository), and names every
tag either side sends."""

from __future__ import annotations

import pytest

from actors.connector.fix import dictionary
from tests.helpers import REPO_ROOT, run_python
from tests.venuesim.conformance import ALLOWED, HEADER

REFERENCE = REPO_ROOT.parent / "shared" / "FIX44_REFERENCE.txt"
GENERATOR = REPO_ROOT / "deploy" / "tools" / "gen_fix_dictionary.py"


@pytest.mark.skipif(not REFERENCE.exists(), reason="no FIX44_REFERENCE.txt beside the repo")
def test_the_checked_in_dictionary_is_the_generators_output() -> None:
    out = run_python([str(GENERATOR), str(REFERENCE)], timeout_s=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (REPO_ROOT / "actors/connector/fix/dictionary.py").read_text()


def test_names_from_the_reference_and_the_extras() -> None:
    assert dictionary.MSG_TYPES["AP"] == "PositionReport"
    assert dictionary.TAGS[11] == "ClOrdID" and dictionary.TAGS[554] == "Password"
    assert dictionary.ENUMS[150]["I"] == "ORDER_STATUS"
    assert dictionary.REQUIRED["H"] == (11, 54)
    assert dictionary.REQUIRED_COMPONENTS["H"] == ("Instrument",)


def test_every_tag_our_messages_carry_has_a_name() -> None:
    used = {"0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "AF", "AN", "q", "j",
            "8", "9", "r", "AP"}  # fmt: skip
    ours = {11, 37, 41, 17, 150, 39, 54, 55, 38, 40, 44, 59, 60, 151, 14, 6, 32, 31, 103, 58,
            790, 584, 585, 911, 912, 710, 724, 1, 581, 715, 721, 727, 728, 730, 731, 734,
            702, 703, 704, 705, 530, 531, 532, 533, 434, 102, 45, 371, 372, 373, 380, 379,
            7, 16, 36, 123, 112, 98, 108, 141, 553, 554}  # fmt: skip
    assert ours <= set(dictionary.TAGS)
    assert set(HEADER) <= set(dictionary.TAGS)
    assert used <= set(ALLOWED)
