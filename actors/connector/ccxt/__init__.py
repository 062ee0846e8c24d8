"""The ccxt venue adapter: crypto exchanges through ccxt (REST + WebSocket)."""
