"""Find Duplicate Users."""
