"""The Kubernetes permissions the operator needs: the single source of truth for its RBAC.

Every rule names the code that needs it. The kustomize ClusterRoles (`manifests/rbac/role.yaml`)
and the Helm chart's rule file (`charts/modelops/files/rbac-rules.yaml`) are generated from `RULES`
(`python tests/unit/deploy_support.py sync`) and a unit test fails when they are stale; the
operator's integration test checks every request the operator really sends against `allows`.
No wildcards, no Secrets, no `update` outside the owners' `finalizers` subresource (every write
is a patch), no `deletecollection`, no `escalate`/`bind`/`impersonate`.

Scopes:
- `namespaced`: resources in the namespaces the operator watches. Granted by a ClusterRole that is
  bound with a ClusterRoleBinding when it watches every namespace, or with one RoleBinding per
  watched namespace otherwise.
- `cluster`: cluster-scoped resources, always granted by a ClusterRole + ClusterRoleBinding.
- `namespace-list`: cluster-scoped too, but only needed when the operator watches a list of
  namespaces (Kopf then lists/watches Namespace objects to match its namespace patterns; with
  `--all-namespaces` it never does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from modelops import API_GROUP

Scope = Literal["namespaced", "cluster", "namespace-list"]


@dataclass(frozen=True)
class Rule:
    """One PolicyRule: these verbs on these resources of these API groups."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    scope: Scope
    why: str

    def as_policy_rule(self) -> dict[str, list[str]]:
        """The rule as a Kubernetes `PolicyRule`."""
        return {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        api_groups=(API_GROUP,),
        resources=("modeldeployments",),
        verbs=("get", "list", "watch", "patch"),
        scope="namespaced",
        why=(
            "Kopf watches ModelDeployments and patches their progress annotations; the "
            "controller reads the one a DriftPolicy or a Deployment refers to, and patches its "
            "spec.model to promote a candidate (controller/driftpolicy.py)."
        ),
    ),
    Rule(
        api_groups=(API_GROUP,),
        resources=("driftpolicies",),
        verbs=("list", "watch", "patch"),
        scope="namespaced",
        why=(
            "Kopf watches DriftPolicies (their events feed the evaluation scheduler) and removes "
            "the finalizer that earlier versions of the operator put on them."
        ),
    ),
    Rule(
        api_groups=(API_GROUP,),
        resources=("modeldeployments/status", "driftpolicies/status"),
        verbs=("patch",),
        scope="namespaced",
        why="The controller writes phase, conditions, drift scores and retraining results.",
    ),
    Rule(
        api_groups=(API_GROUP,),
        resources=("modeldeployments/finalizers", "driftpolicies/finalizers"),
        verbs=("update",),
        scope="namespaced",
        why=(
            "Never called: the owner references modelops.resources puts on Deployments, Services "
            "and Jobs set blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement "
            "admission plugin (on in OpenShift) allows only to who may update the owner's "
            "finalizers."
        ),
    ),
    Rule(
        api_groups=("apps",),
        resources=("deployments",),
        verbs=("get", "list", "watch", "create", "patch"),
        scope="namespaced",
        why=(
            "One Deployment of model-server pods per ModelDeployment (controller/"
            "modeldeployment.py creates and patches it); Kopf watches them to follow rollouts. "
            "Deletion is left to the garbage collector (owner references)."
        ),
    ),
    Rule(
        api_groups=("",),
        resources=("services",),
        verbs=("get", "list", "watch", "create", "patch"),
        scope="namespaced",
        why=(
            "One Service per ModelDeployment (controller/modeldeployment.py); watched (our "
            "labels only) so a resync reads it from memory and a deleted one is recreated."
        ),
    ),
    Rule(
        api_groups=("batch",),
        resources=("jobs",),
        verbs=("get", "list", "create"),
        scope="namespaced",
        why=(
            "A breached DriftPolicy creates a retraining Job and follows it "
            "(controller/driftpolicy.py); finished Jobs go with their owner."
        ),
    ),
    Rule(
        api_groups=("",),
        resources=("pods",),
        verbs=("list",),
        scope="namespaced",
        why="The controller reads the trainer pod's termination message (the training result).",
    ),
    Rule(
        api_groups=("discovery.k8s.io",),
        resources=("endpointslices",),
        verbs=("list", "watch"),
        scope="namespaced",
        why=(
            "The `pods` drift source finds the ready serving endpoints behind the Service "
            "(watched with our Services' labels, listed when none is watched yet)."
        ),
    ),
    Rule(
        api_groups=("",),
        resources=("events",),
        verbs=("create",),
        scope="namespaced",
        why="Kopf posts the Events of kopf.event (the controller's decisions) in the core API.",
    ),
    Rule(
        api_groups=("apiextensions.k8s.io",),
        resources=("customresourcedefinitions",),
        verbs=("list", "watch"),
        scope="cluster",
        why="Kopf scans the CRDs to find which resources it can serve.",
    ),
    Rule(
        api_groups=("",),
        resources=("namespaces",),
        verbs=("list", "watch"),
        scope="namespace-list",
        why="Kopf matches its --namespace patterns against the existing namespaces.",
    ),
)

#: Verbs a rule may never grant: they open privilege escalation or bulk destruction.
FORBIDDEN_VERBS: Final = frozenset({"*", "escalate", "bind", "impersonate", "deletecollection"})
#: Resources a rule may never name.
FORBIDDEN_RESOURCES: Final = frozenset({"*", "secrets", "pods/exec", "pods/attach", "nodes/proxy"})


def allows(verb: str, group: str, resource: str, *, rules: Iterable[Rule] = RULES) -> bool:
    """Whether the operator's rules grant `verb` on `resource` (plural, `x/status` for a
    subresource) of API `group` (`""` for the core group).

    Exact matches only, like the API server without wildcards.
    """
    return any(
        group in rule.api_groups and resource in rule.resources and verb in rule.verbs
        for rule in rules
    )


def rules_for(scope: Scope) -> list[dict[str, list[str]]]:
    """The PolicyRules of one scope, in `RULES` order."""
    return [rule.as_policy_rule() for rule in RULES if rule.scope == scope]


def problems(rules: Sequence[Rule] = RULES) -> list[str]:
    """What is wrong with a rule set (wildcards, forbidden verbs or resources, duplicates)."""
    found: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for rule in rules:
        for verb in rule.verbs:
            if verb in FORBIDDEN_VERBS:
                found.append(f"verb {verb!r} is forbidden (resources {rule.resources})")
        for resource in rule.resources:
            if resource in FORBIDDEN_RESOURCES or "*" in resource:
                found.append(f"resource {resource!r} is forbidden")
        for group in rule.api_groups:
            if "*" in group:
                found.append(f"API group {group!r} is a wildcard")
            for resource in rule.resources:
                for verb in rule.verbs:
                    key = (group, resource, verb)
                    if key in seen:
                        found.append(f"{verb} {group or 'core'}/{resource} is granted twice")
                    seen.add(key)
        if not rule.why.strip():
            found.append(f"rule for {rule.resources} does not say which code needs it")
    return found
