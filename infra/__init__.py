"""AWS CDK app pieces: configuration, constructs and the stack that deploys the refresher."""
