"""The official client's own usage queries (modelUsage, modelUsageByUseCase, globalUsage) against our server."""

from __future__ import annotations

import openai
import pytest

from tests.inference.fixtures import API_KEY

adaptive_sdk = pytest.importorskip("adaptive_sdk")


def test_official_usage_queries_read_our_roll_ups(server, upstream, unique: str) -> None:
    # The client's query builders (custom_fields) do not import in this release: the documents below use the
    # field names they would send, with the client's own input types as the variables.
    from adaptive_sdk.graphql_client.enums import DateBucketUnit
    from adaptive_sdk.graphql_client.input_types import (
        GlobalUsageFilterInput,
        UsageFilterInput,
        UsagePerUseCaseFilterInput,
    )

    from adaptive_engine import Adaptive

    ours = Adaptive(server.base_url, api_key=server.api_key)
    ours.use_cases.create(key=f"offu-{unique}")
    ours.models.add_external(
        name=f"offu-{unique}",
        key=f"offu-{unique}",
        external_model_id="m",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=upstream.base_url,
    )
    ours.models.attach(f"offu-{unique}", use_case=f"offu-{unique}", make_default=True)
    chat = openai.OpenAI(base_url=server.base_url + "/api/v1", api_key=server.api_key, max_retries=0)
    for _ in range(3):
        chat.chat.completions.create(model=f"offu-{unique}", messages=[{"role": "user", "content": "hi"}])
    server.settle()

    official = adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)
    gql = official._gql_client

    def run(query: str, filter_: object) -> dict:
        variables = {"filter": filter_.model_dump(by_alias=True, exclude_none=True, mode="json")}
        return gql.get_data(gql.execute(query, variables=variables))

    item = "bucketTs interactions promptTokens completionTokens totalTokens"
    buckets = run(
        f"query ModelUsage($filter: UsageFilterInput!) {{ modelUsage(filter: $filter) {{ {item} }} }}",
        UsageFilterInput(modelId=f"offu-{unique}", unit=DateBucketUnit.HOUR),
    )["modelUsage"]
    assert sum(b["interactions"] for b in buckets) == 3
    assert all(b["totalTokens"] == b["promptTokens"] + b["completionTokens"] for b in buckets)
    per_use_case = run(
        "query ModelUsageByUseCase($filter: UsagePerUseCaseFilterInput!) { modelUsageByUseCase("
        "filter: $filter) { interactions useCase { id key name description } modelService { id key } } }",
        UsagePerUseCaseFilterInput(modelId=f"offu-{unique}"),
    )["modelUsageByUseCase"]
    assert [(u["interactions"], u["useCase"]["key"], u["modelService"]["key"]) for u in per_use_case] == [
        (3, f"offu-{unique}", f"offu-{unique}")
    ]
    overall = run(
        f"query GlobalUsage($filter: GlobalUsageFilterInput!) {{ globalUsage(filter: $filter) {{"
        f" total {{ interactions totalTokens }} adaptiveModels {{ interactions }} externalModels {{ interactions }}"
        f" byModel {{ interactions totalTokens model {{ key }} timeseries {{ {item} }} }} }} }}",
        GlobalUsageFilterInput(interval=DateBucketUnit.DAY),
    )["globalUsage"]
    mine = next(m for m in overall["byModel"] if m["model"] and m["model"]["key"] == f"offu-{unique}")
    assert mine["interactions"] == 3 and sum(p["interactions"] for p in mine["timeseries"]) == 3
    assert overall["externalModels"]["interactions"] >= 3
    assert (
        overall["total"]["interactions"]
        == overall["adaptiveModels"]["interactions"] + overall["externalModels"]["interactions"]
    )
    ours.close()
