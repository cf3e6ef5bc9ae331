"""Wins and Challenges: biweekly STAR entries from line managers, rolled up the org tree."""
