"""The libraries whose DEBUG output holds credentials, kept at WARNING by both front doors (the Lambda's
telemetry and the CLI), whatever the root logger's level: botocore logs the ECR token, AssumeRole's keys
and the signed request behind the EKS token; urllib3 and kubernetes log request headers."""

from __future__ import annotations

import logging

LIBRARY_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3", "kubernetes")


def pin_library_loggers() -> None:
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
