"""Who sends and receives: stations (franchise locations) and their sender addresses.

Staff users and roles join this package when the admin API needs them."""
