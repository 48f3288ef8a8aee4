"""A small Kubernetes API server for tests and the demo, over real HTTPS.

It implements the subset the refresher uses with kube-apiserver's semantics (docs/development.md): namespaces
with label selectors and pagination, secrets, service accounts and leases with create/get/replace/patch/apply/
delete, resourceVersion conflicts, bearer-token users with RBAC-like rules (401/403 with the real
messages), EKS `k8s-aws-v1.` token verification, fault rules and a request log.
"""

from localkube.access import ADMIN, Rule, User
from localkube.eks_auth import EksTokenAuthenticator, StsIdentityResolver
from localkube.faults import FaultRule
from localkube.server import LocalKube, RequestRecord

__all__ = [
    "ADMIN",
    "EksTokenAuthenticator",
    "FaultRule",
    "LocalKube",
    "RequestRecord",
    "Rule",
    "StsIdentityResolver",
    "User",
]
