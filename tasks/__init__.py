"""Celery tasks, thin: turn primitives into domain inputs, call worker/ or compliance/."""
