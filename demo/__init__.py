"""`make demo`: the real Lambda handler, in EKS mode, against moto's server and a local cluster."""
