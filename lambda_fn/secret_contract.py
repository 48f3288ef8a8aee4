"""The pull secret's contract, stated once: what a secret this tool writes carries (type, data key, label,
annotations, field manager), the kubectl recipe's payload it may adopt, and the words in which the
admission policy refuses anything else.

The function writes and judges secrets by it (lambda_fn/decisions.py, lambda_fn/dockerconfig.py), the
policy renderer turns it into CEL (infra/admission.py), the base64 grammar into a regex over the stored
payload (infra/base64_pattern.py), and `check` recognises the policy's answers by the same words
(lambda_fn/check/). The kube-apiserver tier proves the four agree on a real server.
"""

from __future__ import annotations

import re

DOCKERCONFIGJSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "ecr-token-refresher"
ANNOTATION_PREFIX = "ecr-token-refresher/"
REFRESHED_AT_ANNOTATION = ANNOTATION_PREFIX + "refreshed-at"
EXPIRES_AT_ANNOTATION = ANNOTATION_PREFIX + "expires-at"
REGISTRIES_ANNOTATION = ANNOTATION_PREFIX + "registries"
# The field manager every write of this tool names (`?fieldManager=`): the API server records, per manager,
# the fields it last changed and when (managedFields), which is how a write by anyone else is noticed.
FIELD_MANAGER = "ecr-token-refresher"

# The kubectl recipe's payload as `kubectl create secret docker-registry` writes it: one compact entry,
# {"auths":{"<host>":{...}}}, whose value holds no nested object — RECIPE_OPENING, the host,
# RECIPE_ENTRY, bytes other than braces, RECIPE_CLOSING. Only this shape is adopted, by the function and
# by the policy alike, so the function never decides on an adoption the policy would refuse.
RECIPE_OPENING = b'{"auths":{"'
RECIPE_ENTRY = b'":{'
RECIPE_CLOSING = b"}}}"
RECIPE_PAYLOAD = re.compile(
    re.escape(RECIPE_OPENING) + rb'([^"]*)' + re.escape(RECIPE_ENTRY) + rb"[^{}]*" + re.escape(RECIPE_CLOSING)
)
# The key is whatever the recipe gave --docker-server; cron scripts often write the URL
# (https://<host>, sometimes with a trailing /), which the kubelet resolves to the same registry.
RECIPE_SCHEME, RECIPE_SLASH = "https://", "/"


def recipe_keys(host: str) -> list[str]:
    """Every spelling of `host` as the recipe's key that is adopted: bare, with the scheme, with the slash."""
    return [f"{scheme}{host}{slash}" for scheme in ("", RECIPE_SCHEME) for slash in ("", RECIPE_SLASH)]


# The admission policy's answers (infra/admission.py). `check` knows the shipped policy by its name rule:
# a 422 from some other policy proves nothing about this identity's confinement.
NAME_RULE = "this identity may only write the secret named {}"
# The start of its answer to a write outside the target namespaces. The policy reads namespace labels from
# the API server's cache, so right after a namespace is created or labelled this answer can be transient.
SCOPE_RULE = "this identity may only write in its target namespaces"
DELETE_RULE = "this identity never deletes secrets"
TYPE_RULE = f"this identity may only write secrets of type {DOCKERCONFIGJSON_TYPE}"
LABEL_RULE = f"the secret must carry the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
UPDATE_RULE = (
    f"this identity may only update a secret labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}, "
    "or adopt the kubectl recipe's pull secret for one registry served here"
)
DATA_RULE = f"the secret must hold exactly one data key, {DOCKERCONFIGJSON_KEY}, of at most {{}} bytes"
# A tenant's registry host outside its namespaces; like SCOPE_RULE, judged on the namespace's cached labels.
TENANT_SCOPE = "login only in the namespaces of the tenants that list it"
TENANT_RULE = "this identity may write {}'s " + TENANT_SCOPE
IMMUTABLE_RULE = "this identity may not make a secret immutable (no later renewal could change it)"

# kube-apiserver's own framing of those answers, as `check` reads them: a policy's denial names the policy
# and starts its message so; RBAC's refusal of a secret says "cannot <verb> resource "secrets"" (any other
# 403 comes from admission: a policy with reason Forbidden, a webhook, a quota).
POLICY_DENIAL = re.compile(r"ValidatingAdmissionPolicy '([^']+)'")
DENIED = "denied request: "
RBAC_DENIAL = re.compile(r'cannot [a-z]+ resource "secrets"')
