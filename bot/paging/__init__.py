"""Paging and escalation: alerts in, pages acknowledged and escalated in Slack, load measured."""
