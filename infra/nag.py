"""cdk-nag (AwsSolutions) acknowledgements: each on its construct, each a specific finding with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one specific cdk-nag AwsSolutions finding on `construct`, with the reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))
