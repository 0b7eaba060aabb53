"""PolicyMemory's profiles and holdout metrics: fetched once per model URI, kept while a policy
uses that URI, whatever the number of policies."""

from __future__ import annotations

from modelops.controller.context import HeldByPolicies, PolicyMemory


def test_a_value_is_kept_for_every_policy_in_use_however_many() -> None:
    """The bound was 1,024 URIs, cleared past it: with 2,000 policies of 2,000 models, nearly
    every evaluation fetched and parsed its profile again."""
    memory = PolicyMemory()
    for i in range(3000):
        memory.keep_holdout(f"policy-{i}", f"pvc://models/m{i}/v1", {"accuracy": i / 3000})
    assert all(
        memory.holdout(f"policy-{i}", f"pvc://models/m{i}/v1") == {"accuracy": i / 3000}
        for i in range(3000)
    )


def test_policies_of_one_model_share_its_value() -> None:
    held: HeldByPolicies[dict[str, float]] = HeldByPolicies()
    value = {"accuracy": 0.9}
    held.put("a", "s3://m/v1", value)
    assert held.get("b", "s3://m/v1") is value
    held.release("a")
    assert held.get("c", "s3://m/v1") is value  # b still holds it
    held.release("b")
    held.release("c")
    assert len(held) == 0
    assert held.get("d", "s3://m/v1") is None


def test_a_policy_moving_to_another_model_lets_the_old_one_go() -> None:
    held: HeldByPolicies[str] = HeldByPolicies()
    held.put("a", "s3://m/v1", "profile 1")
    held.put("a", "s3://m/v2", "profile 2")
    assert held.get("b", "s3://m/v1") is None
    assert held.get("b", "s3://m/v2") == "profile 2"
    assert len(held) == 1
    held.put("b", "s3://m/v2", "profile 2 again")  # the same policy and URI: one hold
    held.release("b")
    assert held.get("a", "s3://m/v2") == "profile 2 again"  # a still holds v2


def test_forgetting_a_policy_drops_what_only_it_held() -> None:
    memory = PolicyMemory()
    memory.keep_holdout("a", "s3://m/v1", {"r2": 0.5})
    memory.keep_holdout("b", "s3://m/v1", {"r2": 0.5})
    memory.keep_holdout("b", "s3://n/v1", {"r2": 0.7})  # b moved to another model
    memory.forget("a")
    assert memory.holdout("c", "s3://m/v1") is None
    assert memory.holdout("c", "s3://n/v1") == {"r2": 0.7}
    memory.forget("never-seen")
