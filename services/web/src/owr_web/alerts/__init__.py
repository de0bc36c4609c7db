"""`/alerts` and `/alerts/rules`: the alert history with each delivery, and the built-in rules' switches."""
