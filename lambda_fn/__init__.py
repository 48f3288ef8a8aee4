"""ecr-token-refresher: keeps Amazon ECR image-pull secrets valid in Kubernetes namespaces."""
