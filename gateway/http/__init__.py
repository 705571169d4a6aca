"""The HTTP/1.1 engine: the proxy listener's server and the client to upstreams.

asyncio Protocols with httptools (llhttp) on both sides: `server.py` accepts, `connection.py`
serves one client connection (limits, timeouts, pipelining, smuggling defences), `upstream.py`
keeps pooled connections to origins, `messages.py` and `body.py` are what a handler reads and
answers, `flow.py` the write/read flow control both sides share, `deadline.py` their timers.

It knows nothing of the gateway (routes, keys, limits): a handler is any `async (Request) ->
Response`. Its only import from the gateway is `gateway.errors`, the refusals it answers with
(tests/unit/test_layers.py keeps it so).
"""
