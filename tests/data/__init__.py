"""Tests of recnb.data."""
