"""Local AWS (moto's server) and a local EKS cluster (LocalKube) wired together: the demo and the
integration tests run the real handler against these, with no AWS account and no real cluster."""
