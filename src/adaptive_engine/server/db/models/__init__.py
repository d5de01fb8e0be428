"""All ORM models. Import every domain's module here so Alembic and the app see the full metadata."""

from adaptive_engine.server.db.base import Base
from adaptive_engine.server.db.models.ab_tests import AbCampaign, AbCampaignArm, AbEvaluation
from adaptive_engine.server.db.models.completions import Completion, InferenceError, TrafficHourly
from adaptive_engine.server.db.models.compute import ComputePool, HarmonyGroup
from adaptive_engine.server.db.models.console_sessions import ConsoleSession
from adaptive_engine.server.db.models.datasets import Dataset, UploadSession
from adaptive_engine.server.db.models.events import DomainEvent
from adaptive_engine.server.db.models.feedback import Comparison, Feedback, FeedbackHourly, Outcome
from adaptive_engine.server.db.models.feedback_keys import Metric, UseCaseMetric
from adaptive_engine.server.db.models.graders import Grader, GradingResult, Judge, RemoteEnv
from adaptive_engine.server.db.models.identity import ApiKey, Role, Team, TeamMember, User
from adaptive_engine.server.db.models.integrations import Integration, NotificationDelivery
from adaptive_engine.server.db.models.jobs import CustomRecipe, Job, JobArtifact, JobMetric
from adaptive_engine.server.db.models.registry import Model, ModelService, SystemPromptTemplate
from adaptive_engine.server.db.models.usage import UsageLimit, UsageRollup
from adaptive_engine.server.db.models.use_cases import UseCase, UseCaseShare

__all__ = [
    "AbEvaluation",
    "ApiKey",
    "Base",
    "Comparison",
    "Completion",
    "ComputePool",
    "ConsoleSession",
    "CustomRecipe",
    "Dataset",
    "HarmonyGroup",
    "Integration",
    "Job",
    "JobArtifact",
    "JobMetric",
    "UploadSession",
    "Feedback",
    "FeedbackHourly",
    "InferenceError",
    "TrafficHourly",
    "Grader",
    "GradingResult",
    "Judge",
    "Metric",
    "NotificationDelivery",
    "Model",
    "Outcome",
    "ModelService",
    "RemoteEnv",
    "Role",
    "SystemPromptTemplate",
    "Team",
    "TeamMember",
    "UsageLimit",
    "UsageRollup",
    "UseCase",
    "UseCaseMetric",
    "UseCaseShare",
    "User",
]
