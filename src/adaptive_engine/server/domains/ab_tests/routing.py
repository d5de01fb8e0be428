"""Routing of inference traffic into A/B campaigns: the one call the inference path makes.

    route = await platform.ab_router.route(session, use_case.id, model_id=explicit_model_id_or_None,
                                            session_id=request_session_id, ab_campaign=request_ab_campaign)
    if route is not None:
        serve the model route.model_id (route.model_key), and record route.campaign_id as the
        completion's ab_campaign_id

Rules:
* Default traffic (no explicit model) joins the use case's active campaign with probability
  ``traffic_split`` and goes to one of its models uniformly at random.
* ``ab_campaign`` forces the request into that campaign (it must belong to the use case); with an
  explicit model, the model must be one of the campaign's and the request is counted for it.
* Sticky: with a ``session_id``, both draws are a hash of (campaign, session), so a session always
  gets the same answer, on every replica, with no state kept.  Without one, the draws are random.
* A campaign that has ended routes nothing (the default model serves the request).

The router keeps each use case's active campaign (or its absence) for ``ttl_s`` seconds, so default
traffic costs no query at all most of the time; a campaign created or ended on another replica is
seen within that delay.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.models.ab_tests import ACTIVE_STATUSES
from adaptive_engine.server.domains.ab_tests import repository
from adaptive_engine.server.errors import InvalidInput, NotFound
from adaptive_engine.server.singleflight import SingleFlight


@dataclass(frozen=True)
class AbRoute:
    campaign_id: uuid.UUID
    campaign_key: str
    model_id: uuid.UUID
    model_key: str


@dataclass(frozen=True)
class CampaignSnapshot:
    """What routing needs of a campaign, detached from any session."""

    id: uuid.UUID
    key: str
    use_case_id: uuid.UUID
    traffic_split: float
    active: bool
    arms: tuple[tuple[uuid.UUID, str], ...]

    @classmethod
    def of(cls, campaign: orm.AbCampaign) -> CampaignSnapshot:
        return cls(
            id=campaign.id,
            key=campaign.key,
            use_case_id=campaign.use_case_id,
            traffic_split=campaign.traffic_split,
            active=campaign.status in ACTIVE_STATUSES,
            arms=tuple((arm.model_id, arm.model.key) for arm in campaign.arms),
        )


def sticky_draw(campaign_id: uuid.UUID, session_id: uuid.UUID | str, purpose: str) -> float:
    """A uniform number in [0, 1) fixed by (campaign, session, purpose)."""
    digest = hashlib.sha256(f"{campaign_id}:{session_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _draw(campaign_id: uuid.UUID, session_id: uuid.UUID | str | None, purpose: str, rng: random.Random) -> float:
    return sticky_draw(campaign_id, session_id, purpose) if session_id is not None else rng.random()


def choose_arm(
    campaign: CampaignSnapshot, session_id: uuid.UUID | str | None, *, forced: bool, rng: random.Random
) -> tuple[uuid.UUID, str] | None:
    """The arm (model id, key) for this request, or None when it stays out of the campaign."""
    if not forced and _draw(campaign.id, session_id, "include", rng) >= campaign.traffic_split:
        return None
    arms = campaign.arms
    return arms[min(int(_draw(campaign.id, session_id, "arm", rng) * len(arms)), len(arms) - 1)]


class AbRouter:
    def __init__(self, ttl_s: float = 1.0, rng: random.Random | None = None) -> None:
        self.ttl_s = ttl_s
        self._rng = rng or random.Random()
        self._active: dict[uuid.UUID, tuple[float, CampaignSnapshot | None]] = {}
        # When the entry expires under load, one request reads the campaign and the others wait for it.
        self._flights = SingleFlight()
        self._epoch = 0  # grows at each invalidation: a read begun before one is neither joined nor kept

    def invalidate(self, use_case_id: uuid.UUID | None = None) -> None:
        self._epoch += 1
        if use_case_id is None:
            self._active.clear()
        else:
            self._active.pop(use_case_id, None)

    async def _active_campaign(self, session: AsyncSession, use_case_id: uuid.UUID) -> CampaignSnapshot | None:
        now = time.monotonic()
        cached = self._active.get(use_case_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]

        epoch = self._epoch

        async def load() -> CampaignSnapshot | None:
            campaign = await repository.active_campaign(session, use_case_id)
            snapshot = CampaignSnapshot.of(campaign) if campaign is not None else None
            if epoch == self._epoch:
                self._active[use_case_id] = (now, snapshot)
            return snapshot

        snapshot: CampaignSnapshot | None = await self._flights.run((use_case_id, epoch), load)
        return snapshot

    async def route(
        self,
        session: AsyncSession,
        use_case_id: uuid.UUID,
        *,
        model_id: uuid.UUID | None = None,
        session_id: uuid.UUID | str | None = None,
        ab_campaign: str | None = None,
    ) -> AbRoute | None:
        if ab_campaign:
            found = await repository.find_campaign(session, ab_campaign)
            if found is None or found.use_case_id != use_case_id:
                raise NotFound(f"A/B test '{ab_campaign}' not found in this use case")
            campaign = CampaignSnapshot.of(found)
            if not campaign.active:
                return None
            if model_id is not None:
                for arm_id, arm_key in campaign.arms:
                    if arm_id == model_id:
                        return AbRoute(campaign.id, campaign.key, arm_id, arm_key)
                raise InvalidInput(f"the requested model is not one of the models of A/B test '{campaign.key}'")
            arm = choose_arm(campaign, session_id, forced=True, rng=self._rng)
        else:
            if model_id is not None:
                return None
            snapshot = await self._active_campaign(session, use_case_id)
            if snapshot is None:
                return None
            campaign = snapshot
            arm = choose_arm(campaign, session_id, forced=False, rng=self._rng)
        if arm is None:
            return None
        return AbRoute(campaign.id, campaign.key, arm[0], arm[1])
