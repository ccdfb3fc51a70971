"""KAYA787 service kit: what every app shares, and nothing any single app owns."""
