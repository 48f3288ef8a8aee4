"""The reviews any authenticated user may create, which change nothing: "may I?" (SelfSubjectAccessReview)
and "who am I?" (SelfSubjectReview), answered as kube-apiserver answers them (201 Created)."""

from __future__ import annotations

from typing import Any

from localkube.access import User
from localkube.status import bad_request

ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def access_review(user: User, body: Any) -> dict[str, Any]:
    """Whether the caller's rules allow `spec.resourceAttributes` (core API group only here)."""
    attributes = (body.get("spec") or {}).get("resourceAttributes") if isinstance(body, dict) else None
    if not isinstance(attributes, dict):
        raise bad_request("SelfSubjectAccessReview.authorization.k8s.io: spec.resourceAttributes is required here")
    allowed = attributes.get("group", "") == "" and user.allows(
        str(attributes.get("verb", "")),
        str(attributes.get("resource", "")),
        attributes.get("namespace") or None,
        attributes.get("name") or None,
    )
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"resourceAttributes": attributes},
        "status": {"allowed": allowed},
    }


def subject_review(user: User) -> dict[str, Any]:
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": {"username": user.name, "groups": [*user.groups, "system:authenticated"]}},
    }
