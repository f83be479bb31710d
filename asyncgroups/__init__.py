"""asyncgroups: an async client for the Add to Calendar PRO Groups API."""
