"""Housekeeping passes: idle chunked uploads expire with their parts, finished notification rows go after
the retention period; completed uploads, recent rows and rows still waiting to be sent stay."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from adaptive_engine import Adaptive
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.models.integrations import (
    Integration,
    NotificationDelivery,
)
from adaptive_engine.server.housekeeping import Report, run_pass
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.timestamps import utcnow
from tests.ab_tests.support import in_db
from tests.support import LiveServer, make_settings, private_postgres_database

CREATE_FROM_UPLOAD = (
    "mutation($input: DatasetCreateFromMultipartUpload!) { createDatasetFromMultipartUpload(input: $input) { status } }"
)


def housekeep(server: LiveServer, **overrides: object) -> Report:
    """One housekeeping pass on the server's database and files (own engine), with settings overridden."""
    settings = server.settings.model_copy(update=overrides)

    async def main() -> Report:
        engine = create_engine(settings.resolved_database_url)
        try:
            return await run_pass(create_sessionmaker(engine), FileStore(settings.resolved_files_dir), settings)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"}) as c:
        yield c


def start_upload(http: httpx.Client, parts: int, first_part: bytes) -> str:
    session_id = http.post("/api/v1/upload/init", json={"total_parts_count": parts}).json()["session_id"]
    put = http.post("/api/v1/upload/part", params={"session_id": session_id, "part_number": 1}, content=first_part)
    assert put.status_code == 200
    return session_id


def graphql(http: httpx.Client, query: str, variables: dict) -> dict:
    return http.post("/api/graphql", json={"query": query, "variables": variables}).json()


def test_idle_uploads_expire_with_their_parts(
    server: LiveServer, client: Adaptive, http: httpx.Client, unique: str
) -> None:
    use_case = client.use_cases.create(key=f"hk-{unique}").key
    row = b'{"messages": [{"role": "user", "content": "hi"}], "completion": "hello"}\n'
    stale = start_upload(http, 2, row)
    fresh = start_upload(http, 2, row)
    aborted = start_upload(http, 2, row)
    assert http.request("DELETE", "/api/v1/upload/abort", json={"session_id": aborted}).status_code == 200
    done = start_upload(http, 1, row)
    made = graphql(
        http,
        CREATE_FROM_UPLOAD,
        {"input": {"useCase": use_case, "name": "d", "key": f"d-{unique}", "uploadSessionId": done}},
    )
    assert made["data"]["createDatasetFromMultipartUpload"]["status"] == "DONE", made
    parts = server.settings.resolved_files_dir / "uploads"
    # Parts left behind by an interrupted clean-up: no session row at all.
    stray = parts / str(uuid.uuid4())
    stray.mkdir(parents=True)
    (stray / "00001").write_bytes(row)
    long_ago = utcnow() - timedelta(hours=25)

    async def age(session) -> None:
        ids = [uuid.UUID(s) for s in (stale, aborted, done)]
        await session.execute(
            update(orm.UploadSession)
            .where(orm.UploadSession.id.in_(ids))
            .values(created_at=long_ago, updated_at=long_ago)
        )

    in_db(server, age)

    async def sessions(session) -> set[str]:
        ids = [uuid.UUID(s) for s in (stale, fresh, aborted, done)]
        found = await session.execute(select(orm.UploadSession.id).where(orm.UploadSession.id.in_(ids)))
        return {str(i) for i in found.scalars()}

    # Expiry 0: uploads never expire (stray folders are only looked at when they do).
    housekeep(server, upload_expiry_hours=0)
    assert in_db(server, sessions) == {stale, fresh, aborted, done}
    assert (parts / stale / "00001").is_file()

    report = housekeep(server)
    assert report.failed == []
    assert in_db(server, sessions) == {fresh, done}
    assert not (parts / stale).exists() and not stray.exists()
    assert (parts / fresh / "00001").is_file()
    # The dataset made from an upload is untouched.
    assert [d.key for d in client.datasets.list(use_case=use_case)] == [f"d-{unique}"]
    assert http.get(f"/api/v1/datasets/d-{unique}/download", params={"use_case": use_case}).content == row

    # The expired id is unknown everywhere, with a typed error that says it may have expired.
    for expired in (stale, aborted):
        put = http.post("/api/v1/upload/part", params={"session_id": expired, "part_number": 2}, content=row)
        assert put.status_code == 404 and "expired" in put.json()["error"]["message"]
        abort = http.request("DELETE", "/api/v1/upload/abort", json={"session_id": expired})
        assert abort.status_code == 404
        late = graphql(
            http,
            CREATE_FROM_UPLOAD,
            {"input": {"useCase": use_case, "name": "e", "key": f"e-{unique}", "uploadSessionId": expired}},
        )
        assert late["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert "expired" in late["errors"][0]["message"]
    assert not (parts / stale).exists()
    assert [d.key for d in client.datasets.list(use_case=use_case)] == [f"d-{unique}"]
    # The fresh upload still completes.
    assert (
        http.post("/api/v1/upload/part", params={"session_id": fresh, "part_number": 2}, content=row).status_code == 200
    )
    made = graphql(
        http,
        CREATE_FROM_UPLOAD,
        {"input": {"useCase": use_case, "name": "f", "key": f"f-{unique}", "uploadSessionId": fresh}},
    )
    assert made["data"]["createDatasetFromMultipartUpload"]["status"] == "DONE", made


def test_temporary_files_left_by_a_crash_go_once_untouched_for_the_expiry(server: LiveServer) -> None:
    store = FileStore(server.settings.resolved_files_dir)
    old_file, old_folder, fresh = store.temp_path(".jsonl"), store.temp_path(), store.temp_path(".zip")
    old_file.write_bytes(b"half a dataset")
    (old_folder / "model").mkdir(parents=True)
    (old_folder / "model" / "config.json").write_text("{}")
    fresh.write_bytes(b"being written")
    long_ago = time.time() - 25 * 3600
    for path in (old_file, old_folder):
        os.utime(path, (long_ago, long_ago))
    housekeep(server, upload_expiry_hours=0)  # expiry 0: nothing expires, temporaries included
    assert old_file.exists() and old_folder.exists()
    report = housekeep(server)
    assert report.stale_temps >= 2 and report.failed == []
    assert not old_file.exists() and not old_folder.exists() and fresh.exists()
    fresh.unlink()


def test_an_upload_removed_while_a_part_streams_in_gets_not_found(server: LiveServer, http: httpx.Client) -> None:
    row = b'{"messages": [{"role": "user", "content": "hi"}], "completion": "hello"}\n'
    session_id = start_upload(http, 2, row)

    def body() -> Iterator[bytes]:
        yield row
        time.sleep(0.5)  # the server has read the open session and is writing the part
        assert housekeep(server, upload_expiry_hours=1e-9).uploads >= 1
        yield row

    put = http.post("/api/v1/upload/part", params={"session_id": session_id, "part_number": 2}, content=body())
    assert put.status_code == 404 and "expired" in put.json()["error"]["message"], put.text
    # What the late part wrote is a stray folder, gone on the next pass.
    housekeep(server, upload_expiry_hours=1e-9)
    assert not (server.settings.resolved_files_dir / "uploads" / session_id).exists()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def quiet_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of our own whose notification sender does not poll during the tests: an undelivered event
    would otherwise be claimed (marked dispatched) by the shared server's sender within a second."""
    with private_postgres_database() if request.param == "postgresql" else nullcontext(None) as url:
        settings = make_settings(
            tmp_path_factory.mktemp("housekeeping"), url, notify_poll_interval_s=3600.0, housekeeping_interval_s=0
        )
        with LiveServer(settings) as live:
            yield live


def test_finished_notification_rows_go_after_the_retention_period(quiet_server: LiveServer, unique: str) -> None:
    now = utcnow()
    old = now - timedelta(days=31)
    later = now + timedelta(days=1)

    async def seed(session) -> dict[str, uuid.UUID]:
        team = orm.Team(key=f"hk-{unique}", name="Housekeeping")
        session.add(team)
        await session.flush()
        integration = Integration(team_id=team.id, name="hook", provider="webhook", enabled=False)
        session.add(integration)
        events = {
            "old_sent": orm.DomainEvent(type="job.completed", created_at=old, delivered_at=old),
            "recent_sent": orm.DomainEvent(type="job.completed", created_at=now, delivered_at=now),
            "old_undispatched": orm.DomainEvent(type="job.completed", created_at=old),
            "old_with_waiting_delivery": orm.DomainEvent(type="job.failed", created_at=old, delivered_at=old),
        }
        session.add_all(events.values())
        await session.flush()

        def delivery(event: str, status: str, created_at, **extra) -> NotificationDelivery:
            return NotificationDelivery(
                event_id=events[event].id,
                integration_id=integration.id,
                topic="job.completed",
                status=status,
                created_at=created_at,
                **extra,
            )

        deliveries = {
            "old_delivered": delivery("old_sent", "DELIVERED", old, delivered_at=old),
            "old_failed": delivery("old_sent", "FAILED", old),
            "recent_delivered": delivery("recent_sent", "DELIVERED", now, delivered_at=now),
            "old_pending": delivery("old_with_waiting_delivery", "PENDING", old, next_attempt_at=later),
            "old_sending": delivery("old_with_waiting_delivery", "SENDING", old, next_attempt_at=later),
        }
        session.add_all(deliveries.values())
        await session.flush()
        return {
            **{f"event:{k}": v.id for k, v in events.items()},
            **{f"delivery:{k}": v.id for k, v in deliveries.items()},
        }

    ids = in_db(quiet_server, seed)

    async def remaining(session) -> set[str]:
        events = set((await session.execute(select(orm.DomainEvent.id))).scalars())
        deliveries = set((await session.execute(select(NotificationDelivery.id))).scalars())
        return {name for name, i in ids.items() if i in events | deliveries}

    # Retention 0: everything is kept.
    housekeep(quiet_server, event_retention_days=0)
    assert in_db(quiet_server, remaining) == set(ids)

    report = housekeep(quiet_server)
    assert report.failed == [] and (report.deliveries, report.events) == (2, 1)
    assert in_db(quiet_server, remaining) == {
        "event:recent_sent",
        "event:old_undispatched",
        "event:old_with_waiting_delivery",
        "delivery:recent_delivered",
        "delivery:old_pending",
        "delivery:old_sending",
    }

    # Once its last delivery is finished, the old event goes too.
    async def give_up(session) -> None:
        await session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id.in_([ids["delivery:old_pending"], ids["delivery:old_sending"]]))
            .values(status="FAILED", next_attempt_at=None)
        )

    in_db(quiet_server, give_up)
    report = housekeep(quiet_server)
    assert (report.deliveries, report.events) == (2, 1)
    assert in_db(quiet_server, remaining) == {
        "event:recent_sent",
        "event:old_undispatched",
        "delivery:recent_delivered",
    }


def test_a_pass_is_bounded_and_the_service_is_off_at_interval_zero(quiet_server: LiveServer, unique: str) -> None:
    old = utcnow() - timedelta(days=40)

    async def seed(session) -> None:
        session.add_all([orm.DomainEvent(type="job.completed", created_at=old, delivered_at=old) for _ in range(5)])

    in_db(quiet_server, seed)

    async def bounded() -> tuple[int, int]:
        settings = quiet_server.settings
        engine = create_engine(settings.resolved_database_url)
        try:
            maker, store = create_sessionmaker(engine), FileStore(settings.resolved_files_dir)
            first = await run_pass(maker, store, settings, limit=3)
            second = await run_pass(maker, store, settings, limit=3)
            return first.events, second.events
        finally:
            await engine.dispose()

    first, second = asyncio.run(bounded())
    assert first == 3 and second >= 2
    assert quiet_server.app.state.housekeeping._task is None
