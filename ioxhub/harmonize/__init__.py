"""Harmonization rules: code lists (ISO 3166, HS 2022), periods, units. Each rule a small tested function."""
