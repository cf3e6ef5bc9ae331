"""Support: requests become tickets in tiered queues with SLAs, escalation, runbook answers and reports."""
