#!/usr/bin/env bash
# Prints a kubeconfig for the refresher's service account, to store in Secrets Manager (KUBECONFIG_SECRET).
# Run it with kubectl pointing at the cluster, after `make apply CLUSTER=<name>` (or `make apply HOST=1`
# for a cluster the CLI serves from a host), which creates the account:
#
#   deploy/kubeconfig-for-service-account.sh kube-system/ecr-token-refresher 720h > kubeconfig.yaml
#   aws secretsmanager create-secret --name onprem-kubeconfig --secret-string file://kubeconfig.yaml
#   shred -u kubeconfig.yaml
#
# DURATION: a TokenRequest token (`kubectl create token`) that expires, e.g. 720h; renew the secret
# before then (`put-secret-value`, the next run uses it). Or "long-lived": a token Secret that never
# expires, which the control plane keeps filled; revoke it by deleting that Secret.
set -euo pipefail
account="${1:?usage: $0 <namespace>/<service account> <duration like 720h | long-lived>}"
duration="${2:?usage: $0 <namespace>/<service account> <duration like 720h | long-lived>}"
namespace="${account%%/*}"
name="${account#*/}"

if [[ "$duration" == "long-lived" ]]; then
  kubectl apply -f - >&2 <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: ${name}-token
  namespace: ${namespace}
  annotations:
    kubernetes.io/service-account.name: ${name}
type: kubernetes.io/service-account-token
YAML
  for _ in $(seq 30); do
    token="$(kubectl -n "$namespace" get secret "${name}-token" -o jsonpath='{.data.token}' | base64 -d)"
    [[ -n "$token" ]] && break
    sleep 1
  done
  [[ -n "${token:-}" ]] || { echo "the control plane did not fill ${namespace}/${name}-token" >&2; exit 1; }
else
  token="$(kubectl -n "$namespace" create token "$name" --duration "$duration")"
fi

context="$(kubectl config current-context)"
cluster="$(kubectl config view --minify -o jsonpath='{.contexts[0].context.cluster}')"
server="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
ca="$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
[[ -n "$ca" ]] || { echo "the current context has no certificate-authority-data: TLS must be verified" >&2; exit 1; }

cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: ${cluster}
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: ${namespace}-${name}
  user:
    token: ${token}
contexts:
- name: ${context}
  context:
    cluster: ${cluster}
    user: ${namespace}-${name}
current-context: ${context}
YAML
