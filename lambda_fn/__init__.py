"""ecr-token-refresher: keeps Amazon ECR image-pull secrets valid in Kubernetes namespaces."""

__version__ = "0.3.0"
