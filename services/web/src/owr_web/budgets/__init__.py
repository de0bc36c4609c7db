"""`/budgets`: spend against an amount per UTC period, with its bar, state, reset and forecast; create, edit, delete."""
