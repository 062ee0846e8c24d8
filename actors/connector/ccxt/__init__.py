"""The ccxt venue adapter (crypto exchanges, Binance spot first): an asyncio bridge between
the connector and a ccxt exchange (REST + ccxt.pro WebSocket), and around it pure, tested
functions with no I/O: `mapping` (our requests as ccxt call arguments, ccxt's unified
orders, trades and balances as ExecReports, VenueOrders and PositionViews, with exact
decimal quantities and exec ids that are the same whether an event came by WebSocket or
REST), `errors` (a ccxt exception as what it means for the request: outcome unknown,
rejected, duplicate, back off...; reasons without keys or signatures) and `limits` (an
order checked against the exchange's market filters before it is sent).
"""
