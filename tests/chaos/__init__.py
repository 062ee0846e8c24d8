"""Chaos harness: run the real system under client load, inject faults, check invariants.

    python -m tests.chaos --duration-s 600 --seed 7          # `make chaos`
    python -m tests.chaos --duration-s 40 --fault-interval-s 3 --clients 2 --rate 16

Pieces (each a small module):
- `history`  the clients' record of every invocation and its outcome (JSONL per client)
- `load`     one client process: submit / cancel / replace at a rate, recording history
- `nemesis`  the seeded fault schedule and the thread that injects it
- `venuectl` venue and exchange faults, direct actor requests (sim control, risk positions)
- `system`   the system under test (supervisor restarts, log capture, health)
- `watchers` threads beside the load: the kill-switch monitor, reconciliation passes
- `topology` core+edge: two network namespaces, the link's keys and fault proxy, the edge
- `settle`   after the load: recover, cancel what is open, converge, collect, shut down
- `checker`  pure invariant checks over history, OMS state and venue state
- `sends`    the checker's "reached its venue once" checks (orders, an exchange's refusals)
- `xview`    a ccxt venue's local exchange (its inspection) as the checker's venue view
- `report`   the JSON report and readable summary; `plot` the PNG timeline
- `harness`  wires them together: start, load + nemesis, settle, collect, check, report
"""
