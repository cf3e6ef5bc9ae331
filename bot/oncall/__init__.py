"""On-call rotations: who is on call, overrides and swaps, handoffs, reminders and calendars."""
