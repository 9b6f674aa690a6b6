"""Tests of the base layer: recnb.errors, recnb.config and recnb.files."""
