"""Forms of the manager's pages: what a query string or a post may ask for."""
