"""Tenants, their users and their keys: the rules and operations shared by admin API and CLI."""
