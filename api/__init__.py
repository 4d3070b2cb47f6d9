"""The FastAPI gateway: validates, then starts, signals, updates, queries and cancels workflows."""
