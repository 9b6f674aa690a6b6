"""Tests of recnb.viz."""
