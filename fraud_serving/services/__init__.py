"""The service's domain logic behind the routes: store access, model holder, scoring, labels."""
