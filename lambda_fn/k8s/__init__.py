"""The only package that imports the kubernetes client: ClusterApi over it, and how to connect."""

from lambda_fn.k8s.api import KubernetesCluster
from lambda_fn.k8s.connection import (
    Connection,
    connect,
    eks_connection,
    kubeconfig_file_connection,
    kubeconfig_file_problems,
)
from lambda_fn.k8s.kubeconfig import kubeconfig_document_connection

__all__ = [
    "Connection",
    "KubernetesCluster",
    "connect",
    "eks_connection",
    "kubeconfig_document_connection",
    "kubeconfig_file_connection",
    "kubeconfig_file_problems",
]
