"""The /sdapi/v1 HTTP API (AUTOMATIC1111 1.10 compatible) over the runtime: models.py (request and
response bodies), generation.py (requests -> jobs -> responses), routes.py (the endpoints), server.py
(attaching to Gradio's app or serving alone, auth), plus codec/catalog/extras helpers. See docs/API.md."""
