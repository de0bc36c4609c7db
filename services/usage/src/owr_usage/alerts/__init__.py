"""Alerts: the outbox of events, their deliveries to channels with every attempt, the built-in rules' switches, and the conditions they track."""
