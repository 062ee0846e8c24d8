"""Generate actors/connector/fix/dictionary.py from the FIX 4.4 reference.

    python deploy/tools/gen_fix_dictionary.py [REFERENCE] > actors/connector/fix/dictionary.py

REFERENCE defaults to ../shared/FIX44_REFERENCE.txt (beside the repository). The reference
names the message types, their required fields and components, some tags and the enum
values of some fields; `_EXTRA_TAGS` and `_EXTRA_ENUMS` add the FIX 4.4 names of the
other tags and enums our messages carry (header, session and position fields), so that
`tradepulse fix log` names every field either side sends. tests/connector/fix/
test_dictionary.py checks that the checked-in module is this script's output.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "FIX44_REFERENCE.txt"

# FIX 4.4 tags our messages carry that the reference does not name.
_EXTRA_TAGS = {
    8: "BeginString", 9: "BodyLength", 10: "CheckSum", 35: "MsgType", 43: "PossDupFlag",
    49: "SenderCompID", 50: "SenderSubID", 52: "SendingTime", 56: "TargetCompID",
    57: "TargetSubID", 97: "PossResend", 115: "OnBehalfOfCompID", 122: "OrigSendingTime",
    128: "DeliverToCompID", 369: "LastMsgSeqNumProcessed",
    15: "Currency", 18: "ExecInst", 21: "HandlInst", 39: "OrdStatus", 40: "OrdType",
    54: "Side", 59: "TimeInForce", 98: "EncryptMethod", 99: "StopPx", 102: "CxlRejReason",
    103: "OrdRejReason", 123: "GapFillFlag", 141: "ResetSeqNumFlag", 150: "ExecType",
    371: "RefTagID", 372: "RefMsgType", 373: "SessionRejectReason",
    379: "BusinessRejectRefID", 380: "BusinessRejectReason", 434: "CxlRejResponseTo",
    447: "PartyIDSource", 448: "PartyID", 452: "PartyRole", 453: "NoPartyIDs",
    526: "SecondaryClOrdID", 530: "MassCancelRequestType", 531: "MassCancelResponse",
    532: "MassCancelRejectReason", 533: "TotalAffectedOrders", 553: "Username",
    554: "Password", 585: "MassStatusReqType", 702: "NoPositions", 703: "PosType",
    706: "PosQtyStatus", 724: "PosReqType", 728: "PosReqResult", 729: "PosReqStatus",
    730: "SettlPrice", 731: "SettlPriceType", 734: "PriorSettlPrice", 789: "NextExpectedMsgSeqNum",
    58: "Text", 1: "Account", 581: "AccountType", 19: "ExecRefID",
}  # fmt: skip
# FIX 4.4 enums of fields our messages carry that the reference does not list.
_EXTRA_ENUMS = {
    380: {"0": "OTHER", "1": "UNKNOWN_ID", "2": "UNKNOWN_SECURITY",
          "3": "UNSUPPORTED_MESSAGE_TYPE", "4": "APPLICATION_NOT_AVAILABLE",
          "5": "CONDITIONALLY_REQUIRED_FIELD_MISSING", "6": "NOT_AUTHORIZED",
          "7": "DELIVERTO_FIRM_NOT_AVAILABLE_AT_THIS_TIME", "18": "INVALID_PRICE_INCREMENT"},
    530: {"1": "CANCEL_ORDERS_FOR_A_SECURITY", "2": "CANCEL_ORDERS_FOR_AN_UNDERLYING_SECURITY",
          "3": "CANCEL_ORDERS_FOR_A_PRODUCT", "4": "CANCEL_ORDERS_FOR_A_CFICODE",
          "5": "CANCEL_ORDERS_FOR_A_SECURITYTYPE", "6": "CANCEL_ORDERS_FOR_A_TRADING_SESSION",
          "7": "CANCEL_ALL_ORDERS"},
    531: {"0": "CANCEL_REQUEST_REJECTED", "1": "CANCEL_ORDERS_FOR_A_SECURITY",
          "2": "CANCEL_ORDERS_FOR_AN_UNDERLYING_SECURITY", "3": "CANCEL_ORDERS_FOR_A_PRODUCT",
          "4": "CANCEL_ORDERS_FOR_A_CFICODE", "5": "CANCEL_ORDERS_FOR_A_SECURITYTYPE",
          "6": "CANCEL_ORDERS_FOR_A_TRADING_SESSION", "7": "CANCEL_ALL_ORDERS"},
    532: {"0": "MASS_CANCEL_NOT_SUPPORTED", "1": "INVALID_OR_UNKNOWN_SECURITY",
          "2": "INVALID_OR_UNKNOWN_UNDERLYING", "3": "INVALID_OR_UNKNOWN_PRODUCT",
          "4": "INVALID_OR_UNKNOWN_CFICODE", "5": "INVALID_OR_UNKNOWN_SECURITY_TYPE",
          "6": "INVALID_OR_UNKNOWN_TRADING_SESSION", "99": "OTHER"},
    581: {"1": "CARRIED_CUSTOMER_SIDE", "2": "CARRIED_NON_CUSTOMER_SIDE",
          "3": "HOUSE_TRADER", "4": "FLOOR_TRADER", "6": "CARRIED_NON_CUSTOMER_SIDE_CROSS_MARGINED",
          "7": "HOUSE_TRADER_CROSS_MARGINED", "8": "JOINT_BACKOFFICE_ACCOUNT"},
    731: {"1": "FINAL", "2": "THEORETICAL"},
}  # fmt: skip

_MESSAGE = re.compile(
    r"^(\w+): 35=(\w+) cat=(\w+) required fields=(\[.*\]) required comps=(\[.*\])$"
)
_ENUM = re.compile(r"^(\w+)\((\d+), \w+\): (.*)$")
_PAIR = re.compile(r"(\w+)=(\d+)")


def parse(text: str) -> dict[str, object]:
    msg_types: dict[str, str] = {}
    admin: list[str] = []
    required: dict[str, tuple[int, ...]] = {}
    components: dict[str, tuple[str, ...]] = {}
    tags: dict[int, str] = {}
    enums: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if m := _MESSAGE.match(line):
            name, msg_type, cat, fields, comps = m.groups()
            msg_types[msg_type] = name
            if cat == "admin":
                admin.append(msg_type)
            pairs = ast.literal_eval(fields)
            required[msg_type] = tuple(int(tag) for _, tag in pairs)
            tags.update({int(tag): field for field, tag in pairs})
            components[msg_type] = tuple(ast.literal_eval(comps))
        elif m := _ENUM.match(line):
            name, tag, values = m.groups()
            tags[int(tag)] = name
            enums[int(tag)] = dict(v.split("=", 1) for v in values.split(", "))
        elif "=" in line and " " in line:
            tags.update({int(tag): name for name, tag in _PAIR.findall(line)})
    for tag, name in _EXTRA_TAGS.items():
        tags.setdefault(tag, name)
    for tag, values in _EXTRA_ENUMS.items():
        enums.setdefault(tag, values)
    return {
        "MSG_TYPES": msg_types,
        "ADMIN_MSG_TYPES": tuple(admin),
        "REQUIRED": required,
        "REQUIRED_COMPONENTS": components,
        "TAGS": dict(sorted(tags.items())),
        "ENUMS": dict(sorted(enums.items())),
        "REFERENCE_ENUM_TAGS": tuple(sorted(t for t in enums if t not in _EXTRA_ENUMS)),
    }


_TYPES = {
    "MSG_TYPES": "dict[str, str]",
    "ADMIN_MSG_TYPES": "tuple[str, ...]",
    "REQUIRED": "dict[str, tuple[int, ...]]",
    "REQUIRED_COMPONENTS": "dict[str, tuple[str, ...]]",
    "TAGS": "dict[int, str]",
    "ENUMS": "dict[int, dict[str, str]]",
    "REFERENCE_ENUM_TAGS": "tuple[int, ...]",
}
_DOCS = {
    "MSG_TYPES": "MsgType(35) value -> message name",
    "ADMIN_MSG_TYPES": "the session-level (admin) message types",
    "REQUIRED": "MsgType -> the fields FIX 4.4 requires in it (header and components aside)",
    "REQUIRED_COMPONENTS": "MsgType -> the components FIX 4.4 requires in it",
    "TAGS": "tag -> field name",
    "ENUMS": "tag -> {value: name} of the enumerated fields",
    "REFERENCE_ENUM_TAGS": "the tags whose enum comes from the reference itself",
}


def render(data: dict[str, object]) -> str:
    out = [
        '"""FIX 4.4 data dictionary: message, field and enum names. GENERATED by',
        "deploy/tools/gen_fix_dictionary.py from FIX44_REFERENCE.txt (plus the FIX 4.4 names of",
        'the other tags our messages carry); do not edit by hand."""',
        "",
        "# fmt: off",
        "# ruff: noqa: E501",
    ]
    for name, value in data.items():
        out += ["", f"# {_DOCS[name]}", f"{name}: {_TYPES[name]} = {value!r}"]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    reference = Path(argv[1]) if len(argv) > 1 else DEFAULT_REFERENCE
    sys.stdout.write(render(parse(reference.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
