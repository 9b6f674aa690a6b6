"""Tests of recnb.teaching."""
