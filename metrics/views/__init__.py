"""The manager's pages: the dashboard, its CSV downloads, forecasts, the weekly review."""
