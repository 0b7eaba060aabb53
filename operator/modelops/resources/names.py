"""Deterministic names of the objects the operator creates.

Names are pure functions of their owner so that a retry, a restart or a second operator replica
computes the same name and a create conflicts (409) instead of duplicating. Every name is a valid
DNS-1035 label (Services need that, Job names become pod labels): lower case, at most 63
characters; a long or unusual owner name is shortened with a hash suffix that keeps it unique.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def short_hash(*parts: str, length: int = 10) -> str:
    """A stable hex digest of ``parts`` (separated so that ("a", "bc") != ("ab", "c"))."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def dns_label(text: str, *, suffix: str = "") -> str:
    """``text + suffix`` as a DNS-1035 label; unsafe or long text gets a hash to stay unique."""
    candidate = f"{text}{suffix}"
    if len(candidate) <= MAX_NAME and _DNS_1035.match(candidate):
        return candidate
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"m-{cleaned}".rstrip("-")
    tail = f"-{short_hash(text)[:8]}{suffix}"
    return cleaned[: MAX_NAME - len(tail)].rstrip("-") + tail


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters of ``[-A-Za-z0-9_.]``)."""
    if len(text) <= MAX_NAME and _LABEL_VALUE.match(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    tail = f"-{short_hash(text)[:8]}"
    return cleaned[: MAX_NAME - len(tail)].rstrip("-_.") + tail


def deployment_name(model_deployment: str) -> str:
    """Name of the Deployment (and of the Service) serving ``model_deployment``."""
    return dns_label(model_deployment)


def service_name(model_deployment: str) -> str:
    """Name of the Service in front of the serving pods."""
    return dns_label(model_deployment)


def job_name(policy: str, policy_uid: str, candidate_version: str) -> str:
    """The retraining Job's name, derived from its idempotency key (policy uid, candidate).

    The same policy object asking for the same candidate always gets the same name, so a retry
    after a crash meets a 409 and adopts the Job rather than starting a second one.
    """
    key = short_hash(policy_uid, candidate_version)
    return dns_label(policy, suffix=f"-retrain-{key}")


def service_url(model_deployment: str, namespace: str, port: int) -> str:
    """In-cluster URL of the model's V2 inference API."""
    host = f"{service_name(model_deployment)}.{namespace}.svc"
    return f"http://{host}:{port}/v2/models/{model_deployment}"
