"""The data plane: REST routes under /api/v1. Domains include their routers here (one line each)."""

from __future__ import annotations

from fastapi import APIRouter

from adaptive_engine.server.auth.session_routes import router as session_router
from adaptive_engine.server.domains.datasets.rest import router as datasets_router
from adaptive_engine.server.domains.feedback.rest import router as feedback_router
from adaptive_engine.server.domains.graders.rest import router as graders_router
from adaptive_engine.server.domains.inference.rest import router as inference_router
from adaptive_engine.server.domains.interactions.rest import router as interactions_router
from adaptive_engine.server.domains.jobs.rest import router as jobs_router
from adaptive_engine.server.domains.training.rest import router as training_router

api_router = APIRouter(prefix="/api/v1")
# Routes are matched in order: production traffic (inference, logging) first.
api_router.include_router(inference_router)
api_router.include_router(interactions_router)
api_router.include_router(feedback_router)
api_router.include_router(datasets_router)
api_router.include_router(jobs_router)
api_router.include_router(graders_router)
api_router.include_router(training_router)
api_router.include_router(session_router)
