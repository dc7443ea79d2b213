"""The HTTP side: webhook receiver and admin API (FastAPI, served by uvicorn)."""
