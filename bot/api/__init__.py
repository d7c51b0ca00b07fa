"""The integration REST API (`/api/v1`): FastAPI over the same domain services as chat.

`create_api(ctx)` in app.py builds it; `bot/server.py` mounts it. Every resource module in
`bot/api/routes/` exposes a `router` and is included automatically.
"""
