"""A/B campaigns fed through the public data plane: interactions tagged with the campaign, inline metric
feedback, and preferences logged between completions of different models."""

from __future__ import annotations

from tests.ab_tests.support import MIN_OBS, evaluate, make_setup

MESSAGES = [{"role": "user", "content": "How do I reset my password?"}]


def test_metric_campaign_from_logged_interactions(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"api-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    n = MIN_OBS + 5
    for model, successes in ((s.models[0], 5), (s.models[1], n - 1)):
        for i in range(n):
            ab_client.interactions.create(
                messages=MESSAGES,
                completion="Click 'forgot password'.",
                model=model,
                ab_campaign=key,
                feedbacks=[{"feedback_key": s.metrics["ok"], "value": i < successes}],
                use_case=s.use_case,
            )
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[1] and got.feedbacks == 2 * n
    default = [m for m in ab_client.use_cases.get(s.use_case).model_services if m.is_default]
    assert [m.key for m in default] == [s.models[1]]


def test_preference_campaign_from_logged_preferences(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"apip-{unique}"
    ab_client.ab_tests.create(key, s.metrics["pref"], s.models, feedback_type="preference", use_case=s.use_case)
    for i in range(MIN_OBS + 5):
        ids = [
            ab_client.interactions.create(
                messages=MESSAGES,
                completion=f"answer {i} of {model}",
                model=model,
                ab_campaign=key,
                use_case=s.use_case,
            ).completion_id
            for model in s.models
        ]
        preferred, other = (ids[1], ids[0]) if i % 10 else (ids[0], ids[1])
        ab_client.feedback.log_preference(s.metrics["pref"], preferred, other, use_case=s.use_case)
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[1]
    assert got.feedbacks == MIN_OBS + 5
