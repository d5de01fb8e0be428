"""Usage: prices and cost, usage roll-ups, limits and budgets."""
