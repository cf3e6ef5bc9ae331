"""opsbot: a Slack ChatOps bot that helps platform teams operate their platform as a product."""

__version__ = "0.1.0"
