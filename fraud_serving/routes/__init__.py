"""HTTP routes, one module per resource; thin adapters over `fraud_serving.services`."""
