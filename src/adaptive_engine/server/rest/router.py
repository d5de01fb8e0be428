"""The data plane: REST routes under /api/v1. Domains include their routers here (one line each)."""

from __future__ import annotations

from fastapi import APIRouter

api_router = APIRouter(prefix="/api/v1")
